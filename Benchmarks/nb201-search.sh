#!/usr/bin/env bash
# NAS-Bench-201 tabular search quality: 150 evaluations per run, 500 seeds, best test accuracy
# found (mean ± std) for random search, regularized evolution and local search, on CIFAR-10,
# CIFAR-100 and ImageNet16-120. Reads the table from ../shared (not part of the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product naslab-bench >/dev/null
.build/release/naslab-bench nb201 --seeds "${SEEDS:-500}" --budget "${BUDGET:-150}" \
    --table "${TABLE:-../shared/benchmarks/nasbench201/nats_bench_tss_200ep.csv}"
