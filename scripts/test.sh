#!/usr/bin/env bash
# The README's test command: installs what is missing, then runs the whole test suite in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# h5py is the second reader the record and weight-file tests use.
if ! python3 -c "import h5py" >/dev/null 2>&1; then
    python3 -m pip install --quiet h5py 2>/dev/null || python3 -m pip install --quiet --break-system-packages h5py
fi
# onnx (checker) and onnxruntime check the ONNX export (Tests/ONNXTests, docs/onnx.md).
if ! python3 -c "import onnx, onnxruntime" >/dev/null 2>&1; then
    python3 -m pip install --quiet onnx onnxruntime 2>/dev/null || python3 -m pip install --quiet --break-system-packages onnx onnxruntime
fi
# pycocotools is the reference for the COCO detection metrics (Tests/DatasetsTests/DetectionMetricsTests.swift).
if ! python3 -c "import pycocotools.cocoeval" >/dev/null 2>&1; then
    python3 -m pip install --quiet pycocotools 2>/dev/null || python3 -m pip install --quiet --break-system-packages pycocotools
fi
# The second-reader checks (h5py), the onnxruntime checks and the pycocotools comparison must run here, not skip.
export NASLAB_REQUIRE_H5PY=1
export NASLAB_REQUIRE_ONNX=1
export NASLAB_REQUIRE_PYCOCOTOOLS=1
NASLAB_PYTHON=$(command -v python3)
export NASLAB_PYTHON
swift build -c release --build-tests
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# All tests are XCTest; --disable-swift-testing drops the empty Swift Testing run.
status=0
swift test -c release --skip-build --disable-swift-testing "$@" 2>&1 | tee "$log" || status=$?
# One plain closing line: "tests: N passed, N failed, N skipped".
summary=$(grep -E "Executed [0-9]+ tests?, with" "$log" | tail -n 1 || true)
if [ -n "$summary" ]; then
    executed=$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$summary")
    failed=$(sed -E 's/.* ([0-9]+) failures?.*/\1/' <<<"$summary")
    skipped=$(grep -oE "[0-9]+ tests? skipped" <<<"$summary" | grep -oE "^[0-9]+" || echo 0)
    echo "tests: $((executed - failed - skipped)) passed, $failed failed, $skipped skipped"
fi
exit "$status"
