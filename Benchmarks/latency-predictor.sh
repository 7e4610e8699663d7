#!/usr/bin/env bash
# Accuracy of the kernel-level latency predictor (docs/latency.md).
#
# Builds release naslab-bench and runs `naslab-bench latency` once per thread count: a table of
# this machine's kernels (the engine's fused conv → BN → activation chains and every other op) from
# TABLE_SAMPLES architectures of each space (seed 1) plus adaptive sampling, calibrated on
# CALIBRATION further architectures per space measured whole (seed 2), then COUNT held-out
# architectures per space (seed 3) of small, medium, large, text-small/medium/large and
# segmentation-small/medium/large (each task's default input, 10 classes, batch 1), each measured
# with the measurement protocol (reference network interleaved, 3 rounds × 31 passes) and
# predicted without measuring anything of it (kernels the table lacks come from the regressors).
# The last line is `within 10%: <percent>` over all held-out architectures of the last thread count
# (nn-Meter's metric: share of predictions within ±10 % of the measured median).
#
# The table is rebuilt every run unless TABLE names a file holding one for the thread count (then
# it is loaded; a new one is saved there). Run on an idle machine: the protocol detects load changes
# (and repeats the timings they hit) but cannot make a busy machine quiet.
#
# Environment: THREADS="1 2" (thread counts, one table each), COUNT=40, TABLE_SAMPLES=100,
# CALIBRATION (default: LatencyTable.defaultCalibrationNetworksPerSpace, 40), TABLE=path (optional). Extra arguments go to naslab-bench
# (e.g. --verbose; --repeat-measurement 1 measures every held-out network a second time and prints how often
# the two measurements agree within ±10 %: the bound any predictor meets on this machine).
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH="${SCRATCH_PATH:-.build}"
swift build -c release --scratch-path "$SCRATCH" --product naslab-bench >&2
BIN="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)/naslab-bench"
for threads in ${THREADS:-1 2}; do
    echo "== threads $threads, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    table=()
    if [ -n "${TABLE:-}" ]; then table=(--table "$TABLE"); fi
    calibration=()
    if [ -n "${CALIBRATION:-}" ]; then calibration=(--calibration "$CALIBRATION"); fi
    "$BIN" latency --threads "$threads" --count "${COUNT:-40}" --table-samples "${TABLE_SAMPLES:-100}" \
        "${calibration[@]}" "${table[@]}" "$@"
done
