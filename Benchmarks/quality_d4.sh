#!/usr/bin/env bash
# Issue 5's quality bar: one rank, the d4 model (models/nanochat-d4), blocks.2.hook_resid_post, topk,
# expansion 16, k 32, 1.5M tokens, the trainer's default hyperparameters. About 6 minutes on 2 cores.
# Data: the Python 3.11 docs' reST sources that Debian's python3.11-doc installs, split as the tests'
# text shards are (TextShards.swift): of the files sorted by path, file i is held out when i mod 4 = 3.
# Measured: FVU on the held-out files (sae-eval, 65,536 tokens), FVU on nanochat's own reference
# activations (Tests/Fixtures/nanochat-d4/reference; their two rows come from library/functools and
# faq/design, which are training files here), and the dead fraction at the last step.
# Measured 2026-12-06 (seeds 1 and 2): held-out FVU 0.2025 / 0.2028, reference FVU 0.2087 / 0.2066,
# 0% dead; so both FVU bars are 0.23 (10x the seed-to-seed spread above the worst), inside issue 5's
# 0.25. On the former nanochat-made shards the same recipe gave reference FVU 0.204.
# RANKS=4 runs the same budget data-parallel on 4 MPI ranks (issue 6: FVU within 0.02 of 1 rank).
set -euo pipefail
cd "$(dirname "$0")/.."
src=${TEXT:-/usr/share/doc/python3.11/html/_sources}
out=${1:-runs/quality-d4-$(date +%Y%m%d-%H%M%S)}
check=${2:-}      # --check: exit 1 unless the figures meet the bars below
max_heldout_fvu=0.23 max_reference_fvu=0.23 max_dead=0.05
[ -d "$src" ] || { echo "quality_d4: $src missing: install python3.11-doc (bash launch/setup.sh)" >&2; exit 2; }
model=models/nanochat-d4/base_checkpoints/d4
swift build -c release

# The split, as symlinks: train/ and heldout/ mirror the source tree.
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
i=0
while IFS= read -r f; do
    split=train; [ $((i % 4)) -eq 3 ] && split=heldout
    mkdir -p "$data/$split/$(dirname "$f")"
    ln -s "$src/$f" "$data/$split/$f"
    i=$((i + 1))
done < <(cd "$src" && find . -name '*.txt' -printf '%P\n' | LC_ALL=C sort)

launcher=()
if [ "${RANKS:-1}" -gt 1 ]; then . launch/mpi-env.sh; launcher=(mpirun -np "$RANKS"); fi
"${launcher[@]}" .build/release/sae-train --model $model --data "$data/train" \
    --hook blocks.2.hook_resid_post --arch topk --expansion 16 --k 32 --total-tokens 1.5M --out "$out"
sae="$out/blocks.2.hook_resid_post"
last=$(tail -n 1 "$out/metrics.jsonl")
heldout=$(.build/release/sae-eval --sae "$sae" --model $model --data "$data/heldout" --tokens 65536 --json)
reference=$(.build/release/sae-bench heldout --sae "$sae" --reference Tests/Fixtures/nanochat-d4/reference/forward.safetensors --json)
echo "quality_d4: last step $last"
echo "quality_d4: held-out files $heldout"
echo "quality_d4: reference rows $reference"
if [ "$check" = --check ]; then
    python3 - "$last" "$heldout" "$reference" "$max_heldout_fvu" "$max_reference_fvu" "$max_dead" <<'PY'
import json, sys
last, held, ref = (json.loads(a) for a in sys.argv[1:4])
max_held, max_ref, max_dead = (float(a) for a in sys.argv[4:7])
ok = held["fvu"] <= max_held and ref["fvu"] <= max_ref and last["dead_fraction"] < max_dead
print(f"quality_d4: held-out FVU {held['fvu']:.4f} (<= {max_held}), reference FVU {ref['fvu']:.4f} (<= {max_ref}), "
      f"dead {100 * last['dead_fraction']:.2f}% (< {100 * max_dead:g}%): {'ok' if ok else 'FAILED'}")
sys.exit(0 if ok else 1)
PY
fi
