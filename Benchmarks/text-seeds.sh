#!/usr/bin/env bash
# The text ratio's spread over seeds: one fixed text architecture (default: the best of
# Experiments/text-fortunes.yaml's search) trained by `naslab train` vs TF-IDF + LinearSVC, on the
# fortunes split of each seed (the split, initialisation and shuffling all follow the seed).
#
#   Benchmarks/text-seeds.sh
#   SEEDS="1 2 3" ARCH='…' SPACE=text-small EPOCHS=10 Benchmarks/text-seeds.sh
#
# Per seed, interleaved: `naslab datasets export fortunes --seed S` (the split `naslab train --seed
# S` trains on), Benchmarks/python/text_sklearn.py --models linearsvc (TF-IDF word 1–2 + char_wb
# 2–5, C picked on validation: the stronger of the two baselines of text-vs-sklearn.sh), then
# `naslab train` with the experiment's hyperparameters. Accuracy ratios are deterministic per seed
# and thread count; what varies is the seed. Last line:
# "median ratio naslab/sklearn test accuracy over N seeds: <x> (min <a>, max <b>)".
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-1 2 3 4 5}
SPACE=${SPACE:-text-small}
ARCH=${ARCH:-stem.width=64 stage1.depth=1 stage1.width=64 stage1.block0.op=skip head.pool=mean head.dropout=0.0}
EPOCHS=${EPOCHS:-10}
THREADS=${THREADS:-2}
# Experiments/text-fortunes.yaml's training section.
TRAIN=(--epochs "$EPOCHS" --batch-size 64 --learning-rate 0.005 --optimizer adamw --weight-decay 0.1 --schedule cosine)

if [ -z "${PYTHON:-}" ]; then
    [ -x Benchmarks/.venv/bin/python ] || python3 -m venv Benchmarks/.venv
    PYTHON=Benchmarks/.venv/bin/python
fi
"$PYTHON" -c "import sklearn" 2>/dev/null || "$PYTHON" -m pip install --quiet scikit-learn

echo "machine: $(nproc) cpus, load: $(cut -d' ' -f1-3 /proc/loadavg)"
swift build -c release --product naslab >&2
BIN="$(swift build -c release --show-bin-path)/naslab"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/text-seeds.XXXXXX")
echo "space $SPACE, architecture: $ARCH; ${TRAIN[*]}; $THREADS threads"
ratios=()
for seed in $SEEDS; do
    split="$WORK/fortunes-seed$seed.csv"
    "$BIN" datasets export fortunes --seed "$seed" --validation-split 0.1 --output "$split" >/dev/null
    svc=$("$PYTHON" -u Benchmarks/python/text_sklearn.py "$split" --models linearsvc | awk -F': ' '/^sklearn linearsvc test accuracy:/ {print $2}')
    start=$(date +%s.%N)
    naslab=$("$BIN" train --space "$SPACE" --arch "$ARCH" --dataset fortunes --seed "$seed" --validation-split 0.1 \
             --threads "$THREADS" "${TRAIN[@]}" --json | "$PYTHON" -c 'import json, sys; print("%.4f" % json.load(sys.stdin)["test_accuracy"])')
    seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}')
    ratio=$(awk -v a="$naslab" -v b="$svc" 'BEGIN {printf "%.3f", a / b}')
    ratios+=("$ratio")
    echo "seed $seed: sklearn linearsvc test $svc, naslab test $naslab (${seconds} s), ratio $ratio"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '
    {v[NR] = $1}
    END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
         printf "median ratio naslab/sklearn test accuracy over %d seeds: %.3f (min %.3f, max %.3f)\n", NR, m, v[1], v[NR]}'
