#!/usr/bin/env bash
# The README's main command: install what is missing, build (release), and train a TopK SAE on the
# small nanochat model shipped in models/ with 2 MPI ranks, reading the Python documentation's
# reST sources that Debian's python3.11-doc installs (configs/quickstart.json). Extra arguments
# are passed to sae-train (e.g. --total-tokens 1M). Each run writes a new runs/quickstart-<time>.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
swift build -c release --product sae-train
. launch/mpi-env.sh
. launch/run-with-restarts.sh             # MAX_RESTARTS (default 0) restarts a failed run with --resume
out="runs/quickstart-$(date +%Y%m%d-%H%M%S)"
run_with_restarts mpirun -np 2 .build/release/sae-train --config configs/quickstart.json --out "$out" "$@"
echo "SAE written to $out/blocks.2.hook_resid_post (SAELens format); metrics in $out/metrics.jsonl"
