#!/usr/bin/env bash
# NAS-Bench-201 tabular search quality: 500 seeds, the budget curve (mean ± std of the best test
# accuracy after 25, 50, 100 and 150 queries) for random search, regularized evolution and local
# search, without and with zero-cost guidance (NASLab's synflow: warm start of 1,000 scored
# cells, pre-screening at the 0.8-quantile), on CIFAR-10, CIFAR-100 and ImageNet16-120. The first
# run scores most of the 15,625 cells (~15-50 ms each, cached per user in
# $NASLAB_CACHE_DIR/zero-cost/); later runs take seconds. Reads the table from ../shared (not
# part of the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product naslab-bench >/dev/null
.build/release/naslab-bench nb201 --seeds "${SEEDS:-500}" --budget "${BUDGET:-150}" \
    --table "${TABLE:-../shared/benchmarks/nasbench201/nats_bench_tss_200ep.csv}"
