#!/usr/bin/env bash
# CTest's web_browser: the browser tests (run.mjs) on the built page. Without the page, node's
# packages or Chromium (a build without scripts/build_web.sh) the test is skipped (exit 77), unless
# REQUIRED is ON (scripts/test.sh, which builds the page first): then that is a failure.
# Usage: web/test/run.sh PAGE_DIR GRADGRAPH_BINARY REQUIRED
set -euo pipefail
page=$1 gradgraph=$2 required=$3
here=$(cd "$(dirname "$0")" && pwd)
missing=""
[ -f "$page/index.html" ] || missing="the page ($page/index.html: bash scripts/build_web.sh builds it)"
[ -d "$here/../node_modules/puppeteer-core" ] || missing="web/node_modules (bash scripts/build_web.sh installs it)"
[ -x "${GG_CHROMIUM:-/usr/bin/chromium}" ] || missing="chromium (bash scripts/build_web.sh installs it)"
command -v node >/dev/null || missing="node (bash scripts/build_web.sh installs it)"
if [ -n "$missing" ]; then
  echo "web_browser: no $missing"
  case "$required" in ON|on|1|TRUE|true) exit 1 ;; *) exit 77 ;; esac
fi
exec node "$here/run.mjs" "$page" "$gradgraph"
