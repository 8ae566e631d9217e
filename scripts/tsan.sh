#!/usr/bin/env bash
# Builds the thread tests with ThreadSanitizer and runs them: tests/threads/ (models trained at once
# in several threads; recorded Vars shared between threads) and, unless --quick, autodiff's thread
# tests (shared parameters, foreign tapes, the kernel thread pool). clang, -O1 with line tables, OpenMP off (its
# runtime is not instrumented, so TSan would report its internals); any data race report fails.
# The test command (scripts/test.sh) runs the --quick form; run the whole one after touching the
# tape, gradients, the thread pool or optimizers. docs/reliability.md has its last result.
# Usage: scripts/tsan.sh [BUILD_DIR] [--quick]   (default build-tsan)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build-tsan quick=0
for a in "$@"; do
  if [ "$a" = --quick ]; then quick=1; else dir=$a; fi
done
targets=(thread_tests)
[ "$quick" = 1 ] || targets+=(autodiff_tests)
cmake -S . -B "$dir" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" -DGG_PCH=ON -DGG_UNITY=all \
  -DGG_SANITIZE=thread -DGG_BUILD_EXAMPLES=OFF -DCMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON >/dev/null
cmake --build "$dir" -j2 --target "${targets[@]}"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
"$dir/tests/thread_tests"
[ "$quick" = 1 ] || "$dir/tests/autodiff_tests" "*thread*"
