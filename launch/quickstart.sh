#!/usr/bin/env bash
# The README's main command: install, build (release), and run the main job on 2 local ranks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
swift build -c release --product sae-train
. launch/mpi-env.sh
mpirun -np 2 .build/release/sae-train "$@"
