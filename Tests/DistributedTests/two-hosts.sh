#!/usr/bin/env bash
# Two "hosts" on one machine for multi-host MPI tests (PLATFORM.md): network namespaces joined by a
# veth pair on a private subnet this script creates, each with its own hostname (unshare --uts:
# ranks with the same hostname would try shared memory across hosts).
#   two-hosts.sh up TAG            create the hosts 10.254.77.1 and .2 (exit 3 if not permitted here)
#   two-hosts.sh mpirun TAG ARGS   mpirun ARGS from host 1, OpenMPI's rsh launcher pointed at this script
#   two-hosts.sh agent TAG HOST CMD   (what mpirun calls to start a daemon on HOST)
#   two-hosts.sh down TAG
set -uo pipefail
cmd=$1; tag=$2; shift 2
a=nsae_${tag}_a; b=nsae_${tag}_b; net=10.254.77
case $cmd in
up)
    ip netns add "$a" 2>/dev/null || exit 3
    ip netns add "$b" && ip link add "${a}v" type veth peer name "${b}v" &&
    ip link set "${a}v" netns "$a" && ip link set "${b}v" netns "$b" &&
    ip -n "$a" addr add $net.1/24 dev "${a}v" && ip -n "$b" addr add $net.2/24 dev "${b}v" &&
    ip -n "$a" link set "${a}v" up && ip -n "$b" link set "${b}v" up &&
    ip -n "$a" link set lo up && ip -n "$b" link set lo up || { "$0" down "$tag"; exit 3; } ;;
down)
    ip netns del "$a" 2>/dev/null; ip netns del "$b" 2>/dev/null; true ;;
agent)
    while [ "${1#-}" != "$1" ]; do shift; done      # options mpirun may put before the host
    host=$1; shift
    case $host in $net.1) ns=$a; name=${tag}-host1 ;; $net.2) ns=$b; name=${tag}-host2 ;;
                  *) echo "two-hosts: unknown host $host" >&2; exit 1 ;; esac
    exec ip netns exec "$ns" unshare --uts sh -c "hostname $name; $*" ;;
mpirun)
    hosts=$(mktemp); printf '%s.1 slots=2\n%s.2 slots=2\n' $net $net > "$hosts"
    self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
    quoted=$(printf '%q ' "$@")
    ip netns exec "$a" unshare --uts sh -c "hostname ${tag}-host1; exec mpirun --hostfile $hosts \
        --mca plm_rsh_agent '$self agent $tag' --mca btl_tcp_if_include $net.0/24 \
        --mca oob_tcp_if_include $net.0/24 $quoted"
    status=$?; rm -f "$hosts"; exit $status ;;
*) echo "usage: two-hosts.sh up|down|mpirun|agent TAG ..." >&2; exit 2 ;;
esac
