#!/usr/bin/env bash
# Rebuilds the pictures the tutorials show (docs/img/*.svg): runs every shell block of
# docs/tutorial.md, as a reader would from the repository root, in a scratch folder, then copies the
# SVG files they made (Graphviz's renderings of our DOT and our own charts) into docs/img.
# Usage: bash docs/make_pictures.sh [BUILD_DIR]   (default build/, made by scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-build}" && pwd)
command -v dot >/dev/null || { echo "make_pictures: Graphviz's dot is needed (apt-get install graphviz)" >&2; exit 1; }
cmake --build "$build" -j2 --target gradgraph logistic_regression linear_collapse triangle optimizers chain_rule \
  >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ln -s "$build" "$work/build"

# The tutorial's ```sh blocks, in order, without the setup lines (they build the project itself).
awk '/^```sh$/ { inside = 1; next } /^```$/ { inside = 0; next } inside && !/^bash scripts\// { print }' \
  docs/tutorial.md >"$work/tutorial.sh"
(cd "$work" && sh -e tutorial.sh >/dev/null)

# Line charts draw every point; points within a quarter pixel of the line through their neighbours
# are dropped (Ramer-Douglas-Peucker), which keeps the picture and cuts the optimizers' chart from
# ~125 KB to a small fraction.
simplify() {
  awk -v tol=0.25 '
    function dist(i, a, b,   dx, dy, len) {
      dx = X[b] - X[a]; dy = Y[b] - Y[a]; len = sqrt(dx * dx + dy * dy)
      if (len == 0) return sqrt((X[i] - X[a]) ^ 2 + (Y[i] - Y[a]) ^ 2)
      return ((X[i] - X[a]) * dy - (Y[i] - Y[a]) * dx) / len
    }
    function rdp(points,   n, i, p, xy, lo, hi, sp, best, far, d, out, LO, HI, KEEP) {
      n = split(points, p, " ")
      for (i = 1; i <= n; i++) { split(p[i], xy, ","); X[i] = xy[1]; Y[i] = xy[2]; KEEP[i] = 0 }
      KEEP[1] = KEEP[n] = 1; sp = 1; LO[1] = 1; HI[1] = n
      while (sp > 0) {
        lo = LO[sp]; hi = HI[sp]; sp--; best = 0; far = 0
        for (i = lo + 1; i < hi; i++) { d = dist(i, lo, hi); if (d < 0) d = -d; if (d > best) { best = d; far = i } }
        if (best > tol) { KEEP[far] = 1; sp++; LO[sp] = lo; HI[sp] = far; sp++; LO[sp] = far; HI[sp] = hi }
      }
      out = ""
      for (i = 1; i <= n; i++) if (KEEP[i]) out = out (out == "" ? "" : " ") p[i]
      return out
    }
    /<polyline points="/ {
      start = index($0, "points=\"") + 8; rest = substr($0, start); end = index(rest, "\"")
      $0 = substr($0, 1, start - 1) rdp(substr(rest, 1, end - 1)) substr(rest, end)
    }
    { print }' "$1" >"$2"
}

mkdir -p docs/img
# made by the tutorial's commands (in out/)   ->   its name in docs/img
while read -r made name; do
  simplify "$work/out/$made" "docs/img/$name"
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
EOF
