#!/usr/bin/env bash
# Builds gradgraph and runs the whole test suite (CTest): installs missing Debian packages,
# configures build/, builds with both cores, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2
ctest --test-dir build -j2 --output-on-failure
