# Sourced by the launchers: run_with_restarts CMD... runs CMD (an mpirun/srun line); if it fails
# with a run failure (exit status other than 0 and 2 = bad input, which includes a damaged
# checkpoint: rerunning cannot fix it), it runs it again with --resume, up to $MAX_RESTARTS times,
# like torchrun's --max-restarts. Each restart is logged on stderr. A restart continues from the
# latest checkpoint, so a --resume-from STEP of the first attempt is left out of it (it would go
# back to STEP every time).
run_with_restarts() {
    local attempt=0 status=0 skip=0 arg
    local again=()
    for arg in "$@"; do
        if [ "$skip" -eq 1 ]; then skip=0; continue; fi
        case $arg in
            --resume-from) skip=1 ;;
            --resume-from=*) ;;
            *) again+=("$arg") ;;
        esac
    done
    while true; do
        if [ "$attempt" -eq 0 ]; then "$@"; else "${again[@]}" --resume; fi && return 0 || status=$?
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
