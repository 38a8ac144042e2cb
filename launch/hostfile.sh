#!/usr/bin/env bash
# Train on several machines listed in a hostfile (see launch/hostfile.example):
#   launch/hostfile.sh -f HOSTFILE [-i NETWORK] [-r MAX_RESTARTS] -- [sae-train arguments]
# Needs, on every host: the same paths (this repository, the build, the model, the data, and OUT on a
# shared filesystem for --resume), OpenMPI, and passwordless ssh from this host. -i names the
# network (interface or CIDR, e.g. 10.0.0.0/24) that MPI's TCP transport and its out-of-band
# channel use; without it OpenMPI tries every interface, which fails on hosts with docker or VPN ones.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
hostfile=""; network=""; MAX_RESTARTS=0
while getopts "f:i:r:" opt; do
    case $opt in f) hostfile=$OPTARG ;; i) network=$OPTARG ;; r) MAX_RESTARTS=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1)); [ "${1:-}" = "--" ] && shift
[ -f "$hostfile" ] || { echo "launch: hostfile '$hostfile' not found (-f HOSTFILE)" >&2; exit 2; }
. "$here/mpi-env.sh"
. "$here/run-with-restarts.sh"
extra=()
if [ -n "$network" ]; then
    extra+=(--mca btl_tcp_if_include "$network" --mca oob_tcp_if_include "$network")
fi
exe=${SAE_TRAIN:-$here/../.build/release/sae-train}
# -x passes the environment mpi-env.sh set to the remote ranks.
run_with_restarts mpirun --hostfile "$hostfile" "${extra[@]}" \
    -x OMPI_MCA_pml -x OMPI_MCA_btl -x OPENBLAS_NUM_THREADS "$exe" "$@"
