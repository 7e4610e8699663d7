#!/usr/bin/env bash
# Accuracy of the lookup-table latency predictor (docs/latency.md).
#
# Builds release naslab-bench and runs `naslab-bench latency`: a table from 300 architectures per
# space (seed 1; optional calibration of the two overhead terms on other architectures, seed 2,
# with --calibration N), then ≥ 100 test architectures of `small` (digits 1x8x8) and of `medium`
# (Fashion-MNIST 1x28x28), 10 classes, batch 1 (seed 3), each measured with LatencyMeasurement.
# Every comparison (wall / thread-CPU clock × median / minimum) is printed; the last line is
# `within 10%: <percent>` (nn-Meter's metric) for CLOCK and STATISTIC (default: wall-clock medians).
#
# Environment: THREADS="1" (or "1 2": one run per thread count), COUNT=100, CLOCK=wall|thread-cpu,
# STATISTIC=median|minimum.
# Extra arguments go to naslab-bench (e.g. --table Results/latency-table-1t.h5 --verbose).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product naslab-bench >&2
BIN="$(swift build -c release --show-bin-path)/naslab-bench"
for threads in ${THREADS:-1}; do
    echo "== threads $threads, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    "$BIN" latency --threads "$threads" --count "${COUNT:-100}" --clock "${CLOCK:-wall}" \
        --statistic "${STATISTIC:-median}" "$@"
done
