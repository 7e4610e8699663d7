#!/usr/bin/env bash
# Framework throughput on the NAS-Bench-201 table, measured in one run against Optuna:
# NASLab's full tabular search (ask, estimators, lookup, HDF5 record flushed per candidate, tell)
# and Optuna's RandomSampler with in-memory storage on the same lookup.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
TABLE=${TABLE:-../shared/benchmarks/nasbench201/nats_bench_tss_200ep.csv}
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
    [ -x Benchmarks/.venv/bin/python ] || python3 -m venv Benchmarks/.venv
    PYTHON=Benchmarks/.venv/bin/python
fi
"$PYTHON" -c "import optuna" 2>/dev/null || "$PYTHON" -m pip install --quiet optuna
swift build -c release --product naslab-bench >/dev/null
naslab=$(.build/release/naslab-bench throughput --evaluations "$N" --table "$TABLE" | tee /dev/stderr | awk '/^naslab evaluations\/s:/ {print $3}')
optuna=$("$PYTHON" Benchmarks/python/optuna_throughput.py "$TABLE" "$N" | tee /dev/stderr | awk '/^optuna trials\/s:/ {print $3}')
echo "ratio naslab/optuna evaluations/s: $(python3 -c "print(round($naslab / $optuna, 2))")"
