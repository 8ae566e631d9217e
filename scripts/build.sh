#!/usr/bin/env bash
# Builds what a learner needs and nothing more: the libraries, the gradgraph command and the example
# programs (Release, in build/), installing missing Debian packages first. No tests, sanitizers or
# fuzzing: that is scripts/test.sh, whose build this one shares (build/), so neither repeats the other.
set -euo pipefail
cd "$(dirname "$0")/.."
# dataset-fashion-mnist: the tutorials' CNN and the Fashion-MNIST examples read it; wamerican and
# fortunes: the word list and prose the tutorials' language model and examples/char_lm learn from.
bash scripts/deps.sh dataset-fashion-mnist wamerican fortunes
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGG_PCH=ON -DGG_UNITY=tests >/dev/null
cmake --build build -j2 --target gradgraph all_examples
echo "built build/cli/gradgraph and the examples in build/examples/"
