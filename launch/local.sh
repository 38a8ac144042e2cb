#!/usr/bin/env bash
# Train on one machine: launch/local.sh [-n RANKS] [-r MAX_RESTARTS] -- [sae-train arguments]
#   launch/local.sh -n 2 -r 3 -- --config configs/quickstart.json --out runs/a
# Runs `mpirun -np RANKS sae-train ...` (one rank per core is the usual choice; each rank uses one
# BLAS thread) and restarts a failed job from its latest checkpoint up to MAX_RESTARTS times.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ranks=$(nproc); MAX_RESTARTS=0
while getopts "n:r:" opt; do
    case $opt in n) ranks=$OPTARG ;; r) MAX_RESTARTS=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1)); [ "${1:-}" = "--" ] && shift
. "$here/mpi-env.sh"
. "$here/run-with-restarts.sh"
exe=${SAE_TRAIN:-$here/../.build/release/sae-train}
[ -x "$exe" ] || { echo "launch: $exe not found; run swift build -c release first" >&2; exit 2; }
run_with_restarts mpirun -np "$ranks" "$exe" "$@"
