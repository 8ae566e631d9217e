#!/usr/bin/env bash
# Builds the thread tests with ThreadSanitizer and runs them: tests/threads/ (models trained at
# once in several threads) and autodiff's thread tests (shared parameters, foreign tapes). clang,
# -O1 -g, OpenMP off (its runtime is not instrumented, so TSan would report its internals); any
# data race report fails. Not part of scripts/test.sh (it needs its own build of the libraries):
# run it after touching the tape, gradients or optimizers; docs/reliability.md has its last result.
# Usage: scripts/tsan.sh [BUILD_DIR]   (default build-tsan)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-tsan}
cmake -S . -B "$dir" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
  -DGG_SANITIZE=thread -DGG_BUILD_EXAMPLES=OFF -DCMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON >/dev/null
cmake --build "$dir" -j2 --target thread_tests autodiff_tests
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
"$dir/tests/thread_tests"
"$dir/tests/autodiff_tests" "*thread*"
