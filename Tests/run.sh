#!/usr/bin/env bash
# The README's test command (and what .ci/run runs): install what is missing, build, run every test.
# Tests read only the repository (models/, Tests/Fixtures/) and the Python docs' reST sources that
# python3.11-doc installs (setup.sh), which they write as parquet shards in the temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
swift build --build-tests
# The quality bar of the trainer (Benchmarks/quality_d4.sh: a 1.5M-token TopK run on the d4 model
# must reach its held-out FVU and dead-latent bars) needs a release build and ~6 minutes;
# NANOSAE_QUICK=1 skips it. It runs before the unit tests so that their summary is the last line.
if [ "${NANOSAE_QUICK:-0}" != 1 ]; then
    bash Benchmarks/quality_d4.sh "$(mktemp -d)/quality" --check
fi
swift test --skip-build "$@"
