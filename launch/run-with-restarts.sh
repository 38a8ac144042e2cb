# Sourced by the launchers: run_with_restarts CMD... runs CMD (an mpirun/srun line); if it fails
# with a run failure (exit status other than 0 and 2 = bad input), it runs it again with --resume,
# up to $MAX_RESTARTS times, like torchrun's --max-restarts. Each restart is logged on stderr.
run_with_restarts() {
    local attempt=0 status=0
    while true; do
        if [ "$attempt" -eq 0 ]; then "$@"; else "$@" --resume; fi && return 0 || status=$?
        if [ "$status" -eq 2 ]; then
            echo "launch: bad input (exit 2); not restarting" >&2; return 2
        fi
        if [ "$attempt" -ge "${MAX_RESTARTS:-0}" ]; then
            echo "launch: the job failed (exit $status) and no restarts are left ($attempt used)" >&2
            return "$status"
        fi
        attempt=$((attempt + 1))
        echo "launch: the job failed (exit $status); restart $attempt of ${MAX_RESTARTS} from the latest checkpoint with --resume" >&2
        sleep "${RESTART_DELAY:-2}"
    done
}
