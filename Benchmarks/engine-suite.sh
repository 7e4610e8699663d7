#!/usr/bin/env bash
# The engine against PyTorch 2.13 CPU on a suite of real networks, side by side, interleaved.
#
#   Benchmarks/engine-suite.sh [--pairs 5] [--threads "1 2"] [--networks "cnn medium nb201 resnet18 mobilenetv2 text"]
#                              [--modes "train latency"] [--seconds 5] [--warmup 2]
#
# Networks (Benchmarks/Sources/naslab-bench/SuiteBench.swift): the reference CNN (1x28x28), a
# `medium` candidate (seed 1, 1x28x28), an NB201 cell network (C=16, 3x32x32), ResNet-18 and
# MobileNetV2 (3x224x224, 1000 classes), a `text-medium` candidate (seed 1, 24x1x128 token ids).
# PyTorch runs the same graph (exported as JSON by naslab-bench, rebuilt from torch modules by
# Benchmarks/pytorch/suite_bench.py) with the same thread count.
#
# For every network, thread count and mode: --pairs pairs of runs, one NASLab and one PyTorch
# process each, alternating which goes first; the ratio of each pair (train: naslab/pytorch
# samples/s at batch 128, 64 for 224x224, --warmup untimed steps then >= 2 steps and --seconds;
# latency: pytorch/naslab median of 30 batch-1 passes after --warmup (min 5), eval mode,
# torch.inference_mode) — > 1 means NASLab is faster. Reported: the median paired ratio and the
# spread (min–max) of the pairs. Last lines:
#   min ratio naslab/pytorch train: <x>
#   min ratio pytorch/naslab batch-1 latency: <y>
# (the smallest median over the suite).
#
# Python: $PYTHON if set, else Benchmarks/.venv (created, torch 2.13.0+cpu installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=5 THREADS="1 2" NETWORKS="cnn medium nb201 resnet18 mobilenetv2 text" MODES="train latency" SECONDS_PER_RUN=5 WARMUP=2
while [ $# -gt 0 ]; do
    case "$1" in
        --pairs) PAIRS="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --networks) NETWORKS="$2"; shift 2 ;;
        --modes) MODES="$2"; shift 2 ;;
        --seconds) SECONDS_PER_RUN="$2"; shift 2 ;;
        --warmup) WARMUP="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
if [ -z "${PYTHON:-}" ]; then
    [ -x Benchmarks/.venv/bin/python ] || python3 -m venv Benchmarks/.venv
    PYTHON=Benchmarks/.venv/bin/python
fi
"$PYTHON" -c "import torch" 2>/dev/null || "$PYTHON" -m pip install --quiet "torch==2.13.0+cpu"
swift build -c release --product naslab-bench >&2
BIN="$(swift build -c release --show-bin-path)/naslab-bench"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "machine: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "pytorch: $("$PYTHON" -c 'import torch; print(torch.__version__)'), pairs: $PAIRS"
value() { awk -F': ' '{split($2, v, " "); print v[1]}'; }
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
TRAIN_MEDIANS=() ; LATENCY_MEDIANS=()
printf '| network | mode | threads | naslab (median) | pytorch (median) | median ratio | spread |\n|---|---|---|---|---|---|---|\n' > "$WORK/table"
for net in $NETWORKS; do
    "$BIN" suite --network "$net" --graph-out "$WORK/$net.json"
    for mode in $MODES; do
        for threads in $THREADS; do
            : > "$WORK/n" ; : > "$WORK/p" ; : > "$WORK/r"
            for pair in $(seq "$PAIRS"); do
                run_naslab() { OPENBLAS_NUM_THREADS=1 "$BIN" suite --network "$net" --mode "$mode" --threads "$threads" \
                    --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" | tail -1 | value; }
                run_torch() { OMP_NUM_THREADS="$threads" "$PYTHON" Benchmarks/pytorch/suite_bench.py --graph "$WORK/$net.json" --mode "$mode" \
                    --threads "$threads" --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" | tail -1 | value; }
                if [ $((pair % 2)) -eq 1 ]; then N=$(run_naslab); P=$(run_torch); else P=$(run_torch); N=$(run_naslab); fi
                echo "$N" >> "$WORK/n" ; echo "$P" >> "$WORK/p"
                if [ "$mode" = train ]; then R=$(awk -v a="$N" -v b="$P" 'BEGIN {printf "%.3f", a / b}')
                else R=$(awk -v a="$N" -v b="$P" 'BEGIN {printf "%.3f", b / a}'); fi
                echo "$R" >> "$WORK/r"
                echo "[$net $mode ${threads}t pair $pair] naslab $N, pytorch $P, ratio $R (load $(cut -d' ' -f1 /proc/loadavg))"
            done
            MR=$(median < "$WORK/r"); LO=$(sort -g "$WORK/r" | head -1); HI=$(sort -g "$WORK/r" | tail -1)
            UNIT=$([ "$mode" = train ] && echo "samples/s" || echo "ms")
            printf '| %s | %s | %s | %s %s | %s %s | %s | %s–%s |\n' "$net" "$mode" "$threads" "$(median < "$WORK/n")" "$UNIT" \
                "$(median < "$WORK/p")" "$UNIT" "$MR" "$LO" "$HI" >> "$WORK/table"
            if [ "$mode" = train ]; then TRAIN_MEDIANS+=("$MR"); else LATENCY_MEDIANS+=("$MR"); fi
        done
    done
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$WORK/table"
[ ${#TRAIN_MEDIANS[@]} -gt 0 ] && echo "min ratio naslab/pytorch train: $(printf '%s\n' "${TRAIN_MEDIANS[@]}" | sort -g | head -1)"
[ ${#LATENCY_MEDIANS[@]} -gt 0 ] && echo "min ratio pytorch/naslab batch-1 latency: $(printf '%s\n' "${LATENCY_MEDIANS[@]}" | sort -g | head -1)"
