#!/usr/bin/env bash
# Installs the Debian packages nanosae builds and runs with, if any is missing (needs root or sudo).
#   OpenMPI (ranks), OpenBLAS (matmul), zstd/snappy/zlib (parquet pages), pkg-config (finds them),
#   python3.11-doc (the reST sources of the Python docs: the demo corpus and the tests' documents,
#   never committed),
#   iproute2 (network namespaces for the multi-host tests), chromium and curl (the web page test).
set -euo pipefail
packages=(libopenmpi-dev openmpi-bin libopenblas-dev libzstd-dev libsnappy-dev zlib1g-dev pkg-config
          python3.11-doc iproute2 chromium curl)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v swift >/dev/null || { echo "setup: no swift on PATH (Swift 6 toolchain needed)" >&2; exit 1; }
