#!/usr/bin/env bash
# Property-based run of `sae-run serve`'s HTTP API: schemathesis (from PyPI, into .venv-fuzz) reads the
# server's /openapi.json and sends generated valid and invalid requests to 127.0.0.1 only, checking
# every answer against the description (no 5xx, 400 for what the schema forbids, 200 for what it
# allows, response bodies as described, 405 for other methods).
#   Tests/Fuzz/api.sh [seconds, default 300]
# The server runs the d4 model shipped in models/ with a small TopK SAE trained here for the purpose
# (python3.11-doc's text, 16k tokens). --max-prompt-chars is (context − 1)/4 = 63, so every prompt the
# schema allows fits the model's context in tokens (one token per UTF-8 byte at most, plus BOS).
# Not part of `swift test`; Tests/Fuzz/run.sh runs it as the target `api`.
set -euo pipefail
seconds="${1:-300}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
swift build >/dev/null 2>&1
bin="$(swift build --show-bin-path)"
venv="$repo/.venv-fuzz"
[ -x "$venv/bin/schemathesis" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q schemathesis; }

work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
model=models/nanochat-d4/base_checkpoints/d4
hook=blocks.2.hook_resid_post
"$bin/sae-train" --model "$model" --data /usr/share/doc/python3.11/html/_sources --hook "$hook" --expansion 4 --k 16 \
    --context 128 --batch-tokens 1024 --buffer-tokens 8192 --total-tokens 16384 --out "$work/run" >"$work/train.log" 2>&1
port=$((20000 + RANDOM % 20000))
"$bin/sae-run" serve --model "$model" --sae "$work/run/$hook" --port "$port" --max-prompt-chars 63 --max-new-tokens 8 \
    2>"$work/server.log" &
server=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/openapi.json" && break; sleep 0.1; done

set +e
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" --checks all --max-time "$seconds" -w 1 \
    --suppress-health-check too_slow >"$work/schemathesis.log" 2>&1
rc=$?
set -e
cases=$(grep -o '[0-9]* generated' "$work/schemathesis.log" | grep -o '[0-9]*' | tail -1 || true)
failures=$(grep -o '[0-9]* unique failure' "$work/schemathesis.log" | grep -o '^[0-9]*' | tail -1 || true)
alive=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/openapi.json" || true)
[ "$rc" -ne 0 ] && tail -60 "$work/schemathesis.log"
echo "api: ${cases:-?} generated requests in ${seconds}s, ${failures:-0} failures (schemathesis exit $rc), server alive after: $([ "$alive" = 200 ] && echo yes || echo "no ($alive)")"
[ "$rc" -eq 0 ] && [ "$alive" = 200 ]
