#!/usr/bin/env bash
# Builds gradgraph and runs the whole test suite (CTest) three ways: installs missing Debian
# packages, then
#   0. the browser page in build-web/ (scripts/build_web.sh: emscripten, npm packages, chromium);
#   1. the Release build in build/: every test, the page's browser tests (web_browser) among them;
#   2. the sanitizer build in build-sanitize/ (clang, AddressSanitizer + UndefinedBehaviorSanitizer,
#      -O1): the tests again, where any sanitizer report (memory error, leak, undefined behaviour)
#      fails the test (not the examples: their training runs take minutes under the sanitizers);
#   3. the thread tests (tests/threads/) built with ThreadSanitizer in build-tsan/ (scripts/tsan.sh
#      --quick): any data race report fails;
#   4. each libFuzzer target of fuzz/ for GG_FUZZ_SECONDS seconds (default 30), two at a time.
# GG_FUZZ_SECONDS=0 skips step 4.
set -euo pipefail
cd "$(dirname "$0")/.."
# clang, libclang-rt-dev (its sanitizer and libFuzzer runtimes), libomp-dev (its OpenMP): steps 2, 3.
# dataset-fashion-mnist: the tutorials' CNN section and the Fashion-MNIST examples read it.
# wamerican: the word list of the tutorials' language model (the tutorial tests); fortunes: examples/char_lm.
# openmpi-bin, libopenmpi-dev: gradgraph::distributed and its tests under mpirun (step 1).
bash scripts/deps.sh clang libclang-rt-dev libomp-dev dataset-fashion-mnist wamerican fortunes openmpi-bin libopenmpi-dev
bash scripts/build_web.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGG_PCH=ON -DGG_UNITY=tests -DGG_WEB_TESTS=ON >/dev/null
cmake --build build -j2
ctest --test-dir build -j2 --output-on-failure

bash scripts/build_sanitize.sh build-sanitize
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
# Left out here: package_consumer builds an uninstrumented project against the installed libraries
# (packaging, tested by the Release build), the tutorials run the examples, not built here, and
# web_browser drives Chromium through the page (the engine in it is tested here by web_tests).
ctest --test-dir build-sanitize -j2 --output-on-failure -E '^(package_consumer|tutorial_en|tutorial_es|web_browser)$'

bash scripts/tsan.sh build-tsan --quick

seconds=${GG_FUZZ_SECONDS:-30}
if [ "$seconds" -gt 0 ]; then
  GG_FUZZ_BUILD=build-sanitize GG_FUZZ_JOBS=2 bash fuzz/run "$seconds"
fi
