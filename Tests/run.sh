#!/usr/bin/env bash
# The README's test command (and what .ci/run runs): install what is missing, build, run every test.
# Tests read ../shared/fixtures (the fixtures folder beside the repo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
[ -d ../shared/fixtures ] || echo "warning: ../shared/fixtures not found; fixture tests will fail" >&2
swift build --build-tests
swift test --skip-build "$@"
