#!/usr/bin/env bash
# Memory and speed of sae-train at nanochat's d20 shape on one node (issue 14's scale benchmark).
#
#   Benchmarks/scale_d20.sh [WORKDIR]        (default /tmp/nanosae-scale; ~15 min on 2 cores)
#
# Writes a random checkpoint of d20's shape and dtypes (n_embd 1280, 20 layers, bf16 wte and value
# embeddings, the rest float32) with the 4096-token vocabulary of the shipped tokenizer, then for
# np in $NP_LIST (default "1 2 4 8", oversubscribed) trains a TopK SAE on blocks.10.hook_resid_post,
# expansion 32 (d_sae 40960), k 32, for $TOKENS tokens of the Python docs (python3.11-doc). While it
# trains, every rank's /proc/PID/status RssAnon (private memory) is sampled every 0.2 s. One JSON line
# per np: private MB per rank (max) and summed over the ranks (max of the sums), model load seconds,
# tokens/s of the forward (rank 0's, and times np for the node) and of the SAE steps, and the
# OpenBLAS core used (OpenBLAS 0.3.21 may not know a new CPU and pick Prescott's SSE3 kernels: set
# OPENBLAS_CORETYPE=Haswell, or the CPU's name, to compare speeds).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/nanosae-scale}
NP_LIST=${NP_LIST:-"1 2 4 8"}
TOKENS=${TOKENS:-8192}
EXTRA=${EXTRA:-}                 # more sae-train flags, e.g. EXTRA=--shard-optimizer=false
mkdir -p "$work"
cd "$root"
swift build -c release --product sae-train >/dev/null
swift build -c release --product sae-bench >/dev/null
bin=$root/.build/release
. launch/mpi-env.sh
model=$work/d20-v4096
[ -f "$model/meta_000000.json" ] || "$bin/sae-bench" checkpoint --shape d20 --vocab 4096 --out "$model" >&2

for np in $NP_LIST; do
  out=$work/run-np$np${EXTRA:+-$(echo "$EXTRA" | tr -c 'a-z0-9=\n' '_')}
  rm -rf "$out"
  mpirun --oversubscribe -np "$np" "$bin/sae-train" --model "$model" --tokenizer models/nanochat-d4/tokenizer \
    --data /usr/share/doc/python3.11/html/_sources --hook blocks.10.hook_resid_post --expansion 32 --k 32 \
    --context 256 --batch-tokens 2048 --buffer-tokens 8192 --total-tokens "$TOKENS" --log-every 1 \
    --out "$out" $EXTRA 2>"$out.log" &
  job=$!
  # Sample until the job ends: max RssAnon per pid, and max over time of the sum over pids.
  python3 - "$out" "$job" >"$out.mem.json" <<'EOF'
import json, os, subprocess, sys, time
out, job = sys.argv[1], int(sys.argv[2])
peak, peak_sum = {}, 0
while True:
    try: os.kill(job, 0)
    except OSError: break
    pids = subprocess.run(["pgrep", "-f", "sae-train .*--out " + out + "( |$)"], capture_output=True, text=True).stdout.split()
    total = 0
    for p in pids:
        try:
            if open(f"/proc/{p}/comm").read().strip() != "sae-train": continue
            for line in open(f"/proc/{p}/status"):
                if line.startswith("RssAnon:"):
                    kb = int(line.split()[1]); total += kb; peak[p] = max(peak.get(p, 0), kb)
        except OSError: pass
    peak_sum = max(peak_sum, total)
    time.sleep(0.2)
print(json.dumps({"private_mb_per_rank_max": max(peak.values(), default=0) / 1024, "private_mb_node_sum_max": peak_sum / 1024,
                  "private_mb_peaks": sorted(round(v / 1024) for v in peak.values())}))
EOF
  wait "$job" || { echo "np $np failed; see $out.log" >&2; tail -5 "$out.log" >&2; exit 1; }
  python3 - "$out" "$np" <<'EOF'
import json, re, sys
out, np = sys.argv[1], int(sys.argv[2])
mem = json.load(open(out + ".mem.json"))
run = json.load(open(out + "/run.json"))
log = open(out + ".log").read()
m = re.search(r"done: .* SAE steps ([\d.]+)s, model forward and store ([\d.]+)s for \S+ tokens per rank \((\d+) tok/s", log)
tokens = run["total_steps"] * run["config"]["batch_tokens"]
ranks = run["memory_per_rank_mb"]
print(json.dumps({"np": np, "shard_optimizer": run["optimizer"]["sharded"], "tokens": tokens, "openblas_core": run["openblas_core"], **mem,
                  "private_mb_after_load": [round(r["private"]) for r in ranks],
                  "model_load_s_max": max(r["model_load_seconds"] for r in ranks),
                  "account_mb": {k: round(v, 1) for k, v in run["memory_account_mb"].items()},
                  "forward_tokens_per_s_per_rank": int(m.group(3)) if m else None,
                  "forward_tokens_per_s_node": int(m.group(3)) * np if m else None,
                  "sae_step_tokens_per_s": round(tokens / float(m.group(1)), 1) if m else None}))
EOF
done
