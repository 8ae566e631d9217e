#!/usr/bin/env bash
# Builds the browser page (docs/web.md) into build-web/page/index.html: one self-contained file with
# the engine (autodiff, the explain language and the playground's parts of nn, compiled to
# WebAssembly by Debian's emscripten, single-threaded, without OpenBLAS, SLEEF, oneDNN or zlib) and
# Graphviz's WebAssembly build inlined. Installs what it needs when missing: emscripten and nodejs (Debian), and
# the npm packages of web/package-lock.json (npm ci). `gradgraph explain --html` and `gradgraph serve`
# use the page it writes; scripts/build.sh does not need it.
# Usage: scripts/build_web.sh [BUILD_DIR]   (default build-web; the page goes to BUILD_DIR/page)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-web}

# chromium: the page's browser tests (tests/CMakeLists.txt, web_browser) run it headless.
bash scripts/deps.sh emscripten nodejs chromium
if ! command -v npm >/dev/null; then bash scripts/deps.sh npm; fi

# The npm packages exactly as the lockfile pins them, again only when the lockfile changed.
if ! cmp -s web/package-lock.json web/node_modules/.gradgraph-lock.json; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
  cp web/package-lock.json web/node_modules/.gradgraph-lock.json
fi

# Emscripten's JS tools require Debian's node modules (node-acorn) from /usr/share/nodejs, which
# Debian's nodejs searches but a nodejs from elsewhere (NodeSource's) does not.
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
# -O2 (-O3 makes a larger module and is no faster here); only the engine's target is built.
emcmake cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
  -DGG_PCH=ON -DGG_UNITY=all -DGG_OPENMP=OFF -DGG_THREADS=OFF -DGG_OPENBLAS=OFF -DGG_SLEEF=OFF -DGG_DNNL=OFF -DGG_ZLIB=OFF >/dev/null
cmake --build "$dir" -j2 --target gradgraph_engine
node web/build.mjs "$dir/web/gradgraph_engine.js" "$dir/page"
