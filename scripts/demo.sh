#!/usr/bin/env bash
# Runs the main demo: builds gradgraph and runs the chain-rule example (the cs231n graph, its
# backward trace, and its DOT picture rendered to out/chain_rule.svg by Graphviz).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target chain_rule
mkdir -p out
./build/examples/chain_rule out/chain_rule.dot
if command -v dot >/dev/null; then
  dot -Tsvg out/chain_rule.dot -o out/chain_rule.svg && echo "wrote out/chain_rule.svg"
fi
