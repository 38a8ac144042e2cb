#!/usr/bin/env bash
# Fuzzes the Formats readers with libFuzzer + AddressSanitizer: pickle, zip (+ torch checkpoint), safetensors.
#   Tests/Fuzz/run.sh [seconds per target, default 60] [target ...]
# Not part of `swift test`. Builds each target with
#   swiftc -sanitize=fuzzer,address -parse-as-library <Formats readers> Tensor.swift <entry>
# into .build-fuzz/, seeds corpora from ../shared/fixtures (make_seeds.py), runs each target for the
# given time and prints executions and crashes. Crash inputs land in .build-fuzz/crashes/<target>/.
set -euo pipefail
seconds="${1:-60}"; shift || true
targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(pickle zip safetensors)

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
fixtures="${FIXTURES:-$repo/../shared/fixtures}"
out="$repo/.build-fuzz"
mkdir -p "$out/src" "$out/corpus" "$out/crashes"

# The readers and what they use; Parquet/Thrift files need the C codecs and are left out. Tensor.swift is
# the only Tensors file needed (a pure Swift struct), so `import Tensors` is dropped and it joins the module.
readers=(FormatError MappedFile ElementType HeaderJSON Safetensors ZipArchive Pickle TorchCheckpoint)
rm -f "$out/src/"*.swift
for f in "${readers[@]}"; do sed '/^import Tensors$/d' "$repo/Sources/Formats/$f.swift" > "$out/src/$f.swift"; done
cp "$repo/Sources/Tensors/Tensor.swift" "$out/src/Tensor.swift"

python3 "$here/make_seeds.py" "$out/corpus" "$fixtures"

declare -A entry=([pickle]=FuzzPickle [zip]=FuzzZip [safetensors]=FuzzSafetensors)
declare -A maxlen=([pickle]=8192 [zip]=16384 [safetensors]=16384)
summary=()
for t in "${targets[@]}"; do
    bin="$out/fuzz-$t"
    echo "== building $t"
    swiftc -sanitize=fuzzer,address -parse-as-library -O -g -module-name FormatsFuzz \
        "$out/src/"*.swift "$here/${entry[$t]}.swift" -o "$bin" 2>&1 | grep -v "Cannot export local symbol" || true
    mkdir -p "$out/corpus/$t-work" "$out/crashes/$t"
    log="$out/fuzz-$t.log"
    echo "== fuzzing $t for ${seconds}s"
    set +e
    "$bin" "$out/corpus/$t-work" "$out/corpus/$t" -max_total_time="$seconds" -max_len="${maxlen[$t]}" \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$out/crashes/$t/" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
    crashes=$(find "$out/crashes/$t" -type f | wc -l)
    summary+=("$t: ${execs} executions in ${seconds}s, coverage ${cov} edges, ${crashes} crash/leak/timeout inputs (exit ${rc})")
    [ "$rc" -ne 0 ] && tail -40 "$log"
done
echo "== summary"
printf '%s\n' "${summary[@]}"
