#!/usr/bin/env bash
# The README's test command (and what .ci/run runs): install what is missing, build, run every test.
# Tests read ../shared/fixtures (the fixtures folder beside the repo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
[ -d ../shared/fixtures ] || echo "warning: ../shared/fixtures not found; fixture tests will fail" >&2
swift build --build-tests
# The quality bar of the trainer (Benchmarks/quality_d4.sh: a 1.5M-token TopK run on the d4 fixture
# must reach held-out FVU <= 0.25 with < 5% dead latents) needs a release build and ~6 minutes;
# NANOSAE_QUICK=1 skips it. It runs before the unit tests so that their summary is the last line.
if [ "${NANOSAE_QUICK:-0}" != 1 ] && [ -d ../shared/fixtures ]; then
    bash Benchmarks/quality_d4.sh "$(mktemp -d)/quality" --check
fi
swift test --skip-build "$@"
