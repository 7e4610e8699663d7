#!/usr/bin/env bash
# The README's main job: installs what is missing, builds NASLab (release) and runs the
# quick-start search on the embedded digits dataset. Extra arguments go to `naslab search`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build -c release --product naslab
# --overwrite: the quick start is meant to be run again; its record is replaced each time.
exec .build/release/naslab search Experiments/quickstart-digits.yaml --overwrite "$@"
