#!/usr/bin/env bash
# Installs the Debian packages gradgraph builds with, when any is missing (Debian 12, as root).
# Usage: scripts/deps.sh [--bench] [extra-package ...]
#   --bench: also what bench/run compares against and trains on: PyTorch and LibTorch, ADOL-C,
#   Sacado (its headers include Kokkos's, which its package does not pull in), Fashion-MNIST.
set -euo pipefail
bench=()
if [ "${1:-}" = --bench ]; then
  shift
  bench=(python3-torch libtorch-dev libadolc-dev libtrilinos-sacado-dev libtrilinos-kokkos-dev
         dataset-fashion-mnist)
fi
packages=(build-essential cmake libboost-graph-dev libboost-program-options-dev libfmt-dev catch2
          libeigen3-dev libopenblas-dev libblis-dev libsleef-dev libdnnl-dev zlib1g-dev libbenchmark-dev graphviz nlohmann-json3-dev "${bench[@]}"
          "$@")
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
