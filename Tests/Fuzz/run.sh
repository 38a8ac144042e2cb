#!/usr/bin/env bash
# Fuzzes the readers of outside input with libFuzzer + AddressSanitizer:
#   pickle       restricted unpickler + torch state-dict walk        (Formats)
#   zip          zip archive + torch checkpoint                       (Formats)
#   safetensors  safetensors header + tensor conversion               (Formats)
#   parquet      parquet footer/thrift/pages/codecs, every column of every row group as strings
#                (Parquet + Formats' errors, libzstd, libsnappy, zlib)
#   tokenizer    tokenizer.pkl -> Tokenizer(pickle:file:) (unpickle, tiktoken state, BPE tables),
#                then encode/decode round trip of a fixed text (Nanochat + Formats' Pickle)
#   saelens      SAE.loadSAELens(from:) on a directory written from the input:
#                cfg.json | 0x00 | sae_weights.safetensors (SAE + Tensors + Formats, OpenBLAS)
#   serve        sae-run serve's request decoding and checks: ServeRequest.features/generate on the
#                input as a body; anything but a decoded, in-bounds request or a RuntimeError fails
#   api          not libFuzzer: schemathesis against a running `sae-run serve` (Tests/Fuzz/api.sh)
#
#   Tests/Fuzz/run.sh [seconds per target, default 60] [target ...]   (default: all eight, one at a time)
#
# Not part of `swift test`. Each target is one module compiled from copies of the sources it needs
# (`import Tensors/Formats` dropped) with
#   swiftc -sanitize=fuzzer,address -parse-as-library -O -g <sources> Tests/Fuzz/Fuzz<Target>.swift
# into .build-fuzz/. make_seeds.py writes the seed corpora; it synthesizes seeds for every target and
# adds some from the nanochat files in the repo (models/nanochat-d4, Tests/Fixtures). Runs use -rss_limit_mb=2048
# -malloc_limit_mb=2048, so an input that asks for a huge allocation is a finding. Crash inputs land in
# .build-fuzz/crashes/<target>/, logs in .build-fuzz/fuzz-<target>.log. Tests/Fuzz/<target>.dict, if there, is
# passed as -dict (saelens: cfg.json's keys and values).
#
# Results of all eight targets at 300 s each: README.md, "Input from outside". Earlier, on the branch
# that added parquet, tokenizer and saelens (2-core machine shared with other builds; edges = final "cov"):
#   parquet      bash Tests/Fuzz/run.sh 300 parquet    2,496,236 execs / 300 s, 1208 edges, 0 crashes
#   tokenizer    bash Tests/Fuzz/run.sh 300 tokenizer    327,804 execs / 300 s, 1201 edges, 1 crash: OOM,
#                a rank id 537019137 made BytePairEncoder allocate 4.3 GB (fixed in Tokenizer.init, test
#                TokenizerTests.idsFarBeyondTheVocabularyAreRefusedBeforeAllocating); after the fix
#                                                          723,107 execs / 300 s, 1240 edges, 0 crashes
#   saelens      bash Tests/Fuzz/run.sh 120 saelens    1,379,952 execs / 120 s,  737 edges, 0 crashes; it did not
#                reach the known d_sae overflow/allocation in 3 runs of 120 s (JSONSerialization is not
#                instrumented, so nothing guides mutations into cfg.json's numbers), though the built
#                target reports both when given them (d_sae 1e12: allocation-size-too-big at
#                SAELensFormat.swift:136; d_sae 2^62: overflow trap at ParameterLayout.swift:32).
set -euo pipefail
# A Swift trap must reach libFuzzer's signal handler at once, not Swift's interactive backtracer.
export SWIFT_BACKTRACE=enable=no
seconds="${1:-60}"; shift || true
targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(pickle zip safetensors parquet tokenizer saelens serve api)

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$repo/.build-fuzz"
mkdir -p "$out/corpus" "$out/crashes"

python3 "$here/make_seeds.py" "$out/corpus"

# Sources per target, as Module/File (without .swift). Tensor.swift is a pure Swift struct, so the Formats
# targets take it alone; the saelens target takes all of Tensors (OpenBLAS) and SAE.
formats=(Formats/FormatError Formats/MappedFile Formats/ElementType Formats/HeaderJSON Formats/Safetensors
         Formats/ZipArchive Formats/Pickle Formats/TorchCheckpoint Tensors/Tensor)
parquet=(Formats/FormatError Formats/MappedFile Parquet/ThriftCompactReader Parquet/ParquetColumnReader
         Parquet/ParquetDecodeError Parquet/ParquetDecompressor Parquet/ParquetError Parquet/ParquetFile
         Parquet/ParquetHybridDecoder Parquet/ParquetMetadata Parquet/ParquetPageHeader)
tokenizer=(Formats/FormatError Formats/MappedFile Formats/Pickle Nanochat/Tokenizer Nanochat/TokenizerFile
           Nanochat/BytePairEncoder Nanochat/PretokenSplitter Nanochat/NanochatError Tensors/Parallel
           Nanochat/ArchitectureProfile Nanochat/HookPoint Nanochat/ModelConfig)  # the last three: NanochatError's messages
serve=(Runtime/ServeRequests Runtime/Steering Runtime/RuntimeError)
saelens=(Formats/FormatError Formats/MappedFile Formats/ElementType Formats/HeaderJSON Formats/Safetensors)
for f in "$repo"/Sources/Tensors/*.swift "$repo"/Sources/SAE/*.swift; do
    f="${f#"$repo/Sources/"}"; saelens+=("${f%.swift}")
done
codecs=(-I "$repo/Sources/CZstd" -I "$repo/Sources/CSnappy" -I "$repo/Sources/CZlib"
        $(pkg-config --cflags-only-I libzstd snappy zlib 2>/dev/null | sed 's/-I/-Xcc -I/g')
        $(pkg-config --libs libzstd snappy zlib 2>/dev/null || echo -lzstd -lsnappy -lz))
blas=(-I "$repo/Sources/COpenBLAS" $(pkg-config --cflags-only-I openblas | sed 's/-I/-Xcc -I/g')
      $(pkg-config --libs openblas))

declare -A entry=([pickle]=FuzzPickle [zip]=FuzzZip [safetensors]=FuzzSafetensors [parquet]=FuzzParquet
                  [tokenizer]=FuzzTokenizer [saelens]=FuzzSAELens [serve]=FuzzServeRequest)
declare -A maxlen=([pickle]=8192 [zip]=16384 [safetensors]=16384 [parquet]=16384 [tokenizer]=8192 [saelens]=8192
                   [serve]=4096)

# Copies the target's sources into $out/src-<target>/ as Module_File.swift (Sources/SAE/TopK.swift and
# Sources/Tensors/TopK.swift share a basename), dropping imports of the modules that are now the same module.
sources() {
    local t="$1"; shift
    local dir="$out/src-$t"
    rm -rf "$dir"; mkdir -p "$dir"
    for f in "$@"; do
        sed -E '/^import (Tensors|Formats|Parquet|Nanochat)$/d' "$repo/Sources/$f.swift" > "$dir/${f//\//_}.swift"
    done
}

summary=()
for t in "${targets[@]}"; do
    if [ "$t" = api ]; then
        set +e; line=$(bash "$here/api.sh" "$seconds" | tail -1); rc=$?; set -e
        summary+=("$line"); [ "$rc" -ne 0 ] && echo "$line"
        continue
    fi
    [ -n "${entry[$t]:-}" ] || { echo "unknown target $t (pickle zip safetensors parquet tokenizer saelens serve api)"; exit 2; }
    bin="$out/fuzz-$t"
    flags=()
    case "$t" in
        pickle|zip|safetensors) sources "$t" "${formats[@]}" ;;
        parquet) sources "$t" "${parquet[@]}"; flags=("${codecs[@]}") ;;
        tokenizer) sources "$t" "${tokenizer[@]}" ;;
        saelens) sources "$t" "${saelens[@]}"; flags=("${blas[@]}") ;;
        serve) sources "$t" "${serve[@]}" ;;
    esac
    echo "== building $t"
    # The saelens module is named Tensors: Tensors' own sources call its free functions as Tensors.f.
    module="Fuzz_$t"; [ "$t" = saelens ] && module=Tensors
    swiftc -sanitize=fuzzer,address -parse-as-library -O -g -module-name "$module" "${flags[@]}" \
        "$out/src-$t/"*.swift "$here/${entry[$t]}.swift" -o "$bin" 2>&1 | grep -v "Cannot export local symbol" || true
    [ -x "$bin" ] || { echo "build of $t failed"; exit 1; }
    # The summary counts this run's findings: an earlier run's are kept aside, not deleted.
    if [ -n "$(ls -A "$out/crashes/$t" 2>/dev/null)" ]; then mv "$out/crashes/$t" "$out/crashes/$t.$(date +%Y%m%d-%H%M%S)"; fi
    mkdir -p "$out/corpus/$t-work" "$out/crashes/$t"
    log="$out/fuzz-$t.log"
    echo "== fuzzing $t for ${seconds}s"
    dict=(); [ -f "$here/$t.dict" ] && dict=(-dict="$here/$t.dict")
    set +e
    "$bin" "$out/corpus/$t-work" "$out/corpus/$t" "${dict[@]}" -max_total_time="$seconds" -max_len="${maxlen[$t]}" \
        -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$out/crashes/$t/" >"$log" 2>&1
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
