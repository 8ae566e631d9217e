#!/usr/bin/env bash
# Installs the Debian packages gradgraph builds with, when any is missing (Debian 12, as root).
# Usage: scripts/deps.sh [extra-package ...]
set -euo pipefail
packages=(build-essential cmake libboost-graph-dev libboost-program-options-dev libfmt-dev catch2
          libeigen3-dev libopenblas-dev zlib1g-dev libbenchmark-dev graphviz nlohmann-json3-dev "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
