#!/usr/bin/env bash
# Rebuilds the pictures the tutorials show (docs/img/*.svg): runs every shell block of
# docs/tutorial.md, as a reader would from the repository root, in a scratch folder, then copies the
# SVG files they made (Graphviz's renderings of our DOT and our own charts) into docs/img.
# Usage: bash docs/make_pictures.sh [BUILD_DIR]   (default build/, made by scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-build}" && pwd)
command -v dot >/dev/null || { echo "make_pictures: Graphviz's dot is needed (apt-get install graphviz)" >&2; exit 1; }
cmake --build "$build" -j2 --target gradgraph all_examples >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ln -s "$build" "$work/build"

# The tutorial's ```sh blocks, in order, without the setup lines (they build the project itself) and
# the Fashion-MNIST training (minutes, and no picture): the lines tests/tutorial_check.cpp skips, but
# the optimizers example, whose pictures are shown.
awk '/^```sh$/ { inside = 1; next } /^```$/ { inside = 0; next }
     inside && !/^bash scripts\// && !/^build\/examples\/fashion_mnist_/ { print }' \
  docs/tutorial.md >"$work/tutorial.sh"
(cd "$work" && sh -e tutorial.sh >/dev/null)

mkdir -p docs/img
# made by the tutorial's commands (in out/)   ->   its name in docs/img
while read -r made name; do
  cp "$work/out/$made" "docs/img/$name"
  echo "docs/img/$name  $(wc -c <"docs/img/$name") bytes"
done <<'EOF'
logistic_regression.svg          logistic_regression.svg
logistic_triangle/regions.svg    logistic_triangle_regions.svg
triangle_regions.svg             triangle_regions.svg
triangle_loss.svg                triangle_loss.svg
mlp.svg                          mlp.svg
spiral/loss.svg                  spiral_loss.svg
spiral/regions.svg               spiral_regions.svg
cs231n.svg                       cs231n.svg
mlp_backward.svg                 mlp_backward.svg
optimizers_loss.svg              optimizers_loss.svg
optimizers_panels.svg            optimizers_panels.svg
xor_regions.svg                  xor_regions.svg
rnn.svg                          rnn_unrolled.svg
gpt.svg                          gpt_block.svg
symmetry_error.svg               symmetry_error.svg
cnn.svg                          cnn.svg
EOF
