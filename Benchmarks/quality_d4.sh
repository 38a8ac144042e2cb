#!/usr/bin/env bash
# Issue 5's quality bar: one rank, the d4 fixture, blocks.2.hook_resid_post, topk, expansion 16,
# k 32, 1.5M tokens, the trainer's default hyperparameters; then FVU on nanochat's own held-out
# reference activations (must be <= 0.25, with < 5% dead latents). About 6 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
F=${FIXTURES:-../shared/fixtures}/nanochat-d4
out=${1:-runs/quality-d4-$(date +%Y%m%d-%H%M%S)}
swift build -c release
.build/release/sae-train --model $F/base_checkpoints/d4 --data $F/base_data_climbmix \
    --hook blocks.2.hook_resid_post --arch topk --expansion 16 --k 32 --total-tokens 1.5M --out "$out"
tail -n 1 "$out/metrics.jsonl"
.build/release/sae-bench heldout --sae "$out/blocks.2.hook_resid_post" --reference $F/reference/forward.safetensors
