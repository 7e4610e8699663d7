#!/usr/bin/env bash
# Zero-cost proxies on NAS-Bench-201: NASLab's synflow, params and flops on the 725 CIFAR-10 cells
# of NASLib's zc_nasbench201.json, Spearman rho vs NASLib's own values and vs CIFAR-10 test
# accuracy; the data-dependent proxies on a Fashion-MNIST stand-in batch (CIFAR-10 is not on this
# machine; DATA=noise for Gaussian noise, DATA=none to skip). Reads ../shared (not in the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product naslab >/dev/null
python3 Benchmarks/python/zero_cost_nb201.py --naslab .build/release/naslab --data "${DATA:-fashion}" \
    --batch-size "${BATCH:-64}" --seed "${SEED:-0}" --limit "${LIMIT:-0}" "$@"
