#!/usr/bin/env bash
# Issue 5's quality bar: one rank, the d4 fixture, blocks.2.hook_resid_post, topk, expansion 16,
# k 32, 1.5M tokens, the trainer's default hyperparameters; then FVU on nanochat's own held-out
# reference activations (must be <= 0.25, with < 5% dead latents). About 6 minutes on 2 cores.
# RANKS=4 runs the same budget data-parallel on 4 MPI ranks (issue 6: FVU within 0.02 of 1 rank).
set -euo pipefail
cd "$(dirname "$0")/.."
F=${FIXTURES:-../shared/fixtures}/nanochat-d4
out=${1:-runs/quality-d4-$(date +%Y%m%d-%H%M%S)}
check=${2:-}      # --check: exit 1 unless FVU <= 0.25 and dead fraction < 5%
swift build -c release
launcher=()
if [ "${RANKS:-1}" -gt 1 ]; then . launch/mpi-env.sh; launcher=(mpirun -np "$RANKS"); fi
"${launcher[@]}" .build/release/sae-train --model $F/base_checkpoints/d4 --data $F/base_data_climbmix \
    --hook blocks.2.hook_resid_post --arch topk --expansion 16 --k 32 --total-tokens 1.5M --out "$out"
last=$(tail -n 1 "$out/metrics.jsonl")
result=$(.build/release/sae-bench heldout --sae "$out/blocks.2.hook_resid_post" --reference $F/reference/forward.safetensors --json)
echo "quality_d4: last step $last"
echo "quality_d4: held-out $result"
if [ "$check" = --check ]; then
    python3 - "$last" "$result" <<'PY'
import json, sys
last, held = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ok = held["fvu"] <= 0.25 and last["dead_fraction"] < 0.05
print(f"quality_d4: held-out FVU {held['fvu']:.4f} (<= 0.25), dead {100 * last['dead_fraction']:.2f}% (< 5%): {'ok' if ok else 'FAILED'}")
sys.exit(0 if ok else 1)
PY
fi
