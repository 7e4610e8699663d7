#!/usr/bin/env bash
# The README's test command: installs what is missing, then runs the whole test suite in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# h5py is the second reader the record and weight-file tests use.
if ! python3 -c "import h5py" >/dev/null 2>&1; then
    python3 -m pip install --quiet h5py 2>/dev/null || python3 -m pip install --quiet --break-system-packages h5py
fi
# The second-reader checks (h5py) must run here, not skip.
export NASLAB_REQUIRE_H5PY=1
NASLAB_PYTHON=$(command -v python3)
export NASLAB_PYTHON
swift build -c release --build-tests
swift test -c release --skip-build "$@"
