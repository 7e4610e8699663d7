#!/usr/bin/env bash
# A real search on digits with the `small` space against random search with the same budget:
# the quick-start experiment (24 trained candidates; SEARCHER, default local_search) and the same
# experiment with `searcher.kind: random`, for SEEDS seeds. Prints the best validation
# accuracy (the selection metric) and that candidate's test accuracy for each run.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-"1 2 3"}
EPOCHS=${EPOCHS:-8}     # fewer epochs keep validation accuracy away from its 100 % ceiling
SEARCHER=${SEARCHER:-local_search}
BUDGET=${BUDGET:-24}
OUT=Benchmarks/out/digits-search
mkdir -p "$OUT"
swift build -c release --product naslab >/dev/null
for seed in $SEEDS; do
    for kind in $SEARCHER random; do
        sed -e "s/^  kind: [a-z_]*/  kind: $kind/" -e "s/^  epochs: 8$/  epochs: $EPOCHS/" \
            Experiments/quickstart-digits.yaml > "$OUT/$kind.yaml"
        start=$(date +%s)
        .build/release/naslab search "$OUT/$kind.yaml" --seed "$seed" --budget "$BUDGET" --output "$OUT/$kind-$seed.h5" --overwrite --quiet > "$OUT/$kind-$seed.txt"
        end=$(date +%s)
        best=$(grep '^best: ' "$OUT/$kind-$seed.txt")
        echo "seed $seed $kind: $best ($((end - start)) s)"
    done
done
