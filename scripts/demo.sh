#!/usr/bin/env bash
# Runs the main demo: builds gradgraph and runs the course's triangle problem (its 2-3-1 sigmoid MLP
# learns the points inside a triangle; its three hidden units are the triangle's three edges),
# writing the decision regions, the loss curve and the model's graph to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGG_PCH=ON -DGG_UNITY=tests >/dev/null
cmake --build build -j2 --target triangle
./build/examples/triangle out
if command -v dot >/dev/null; then
  dot -Tsvg out/triangle_model.dot -o out/triangle_model.svg && echo "wrote out/triangle_model.svg"
fi
