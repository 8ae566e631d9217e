#!/usr/bin/env bash
# Configures and builds the sanitizer build: clang, AddressSanitizer + UndefinedBehaviorSanitizer
# (any report aborts), -O1 with line tables (enough for symbolised reports) and assertions on (test code -O0), the tests, and the libFuzzer targets of fuzz/
# (every library instrumented for their coverage feedback). Not the examples: their training runs
# take minutes under the sanitizers, and what they call is what the tests call. Nor gradgraph::distributed
# (-DGG_MPI=OFF): LeakSanitizer reports Open MPI's own start-up allocations, and its tests run in the
# Release build. Used by
# scripts/test.sh and fuzz/run.
# Usage: scripts/build_sanitize.sh [BUILD_DIR [TARGET...]]   (default build-sanitize, everything)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-sanitize}
shift || true
cmake -S . -B "$dir" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" -DGG_PCH=ON -DGG_UNITY=all \
  -DGG_SANITIZE=address,undefined -DGG_BUILD_FUZZ=ON -DGG_BUILD_EXAMPLES=OFF -DGG_MPI=OFF >/dev/null
if [ $# -gt 0 ]; then
  cmake --build "$dir" -j2 --target "$@"
else
  cmake --build "$dir" -j2
fi
