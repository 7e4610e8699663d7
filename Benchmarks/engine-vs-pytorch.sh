#!/usr/bin/env bash
# Side-by-side training throughput of the NASLab engine and PyTorch 2.13 CPU on the same
# reference CNN (see Benchmarks/pytorch/engine_bench.py), same batch and thread count.
#
#   Benchmarks/engine-vs-pytorch.sh [--threads 2] [--batch 128] [--steps 40] [--repeats 3]
#
# Python: $PYTHON if set (e.g. PYTHON=/work/venv/bin/python), else Benchmarks/.venv (created and
# given torch 2.13.0+cpu when missing). Each side runs --repeats times, alternating; the best
# run of each counts. Last line: "ratio naslab/pytorch train samples/s: <x>".
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=2 BATCH=128 STEPS=40 REPEATS=3
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) THREADS="$2"; shift 2 ;;
        --batch) BATCH="$2"; shift 2 ;;
        --steps) STEPS="$2"; shift 2 ;;
        --repeats) REPEATS="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
if [ -z "${PYTHON:-}" ]; then
    [ -x Benchmarks/.venv/bin/python ] || python3 -m venv Benchmarks/.venv
    PYTHON=Benchmarks/.venv/bin/python
fi
# The shared venv may hold other benchmarks' packages only: check for torch itself.
"$PYTHON" -c "import torch" 2>/dev/null || "$PYTHON" -m pip install --quiet "torch==2.13.0+cpu"
swift build -c release --product naslab-bench >&2
BIN="$(swift build -c release --show-bin-path)/naslab-bench"
export OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS"
echo "machine: $(nproc) cpus, load: $(cut -d' ' -f1-3 /proc/loadavg)"
best() { sort -g | tail -1; }
N_TRAIN=() ; N_FWD=() ; P_TRAIN=() ; P_FWD=()
for r in $(seq "$REPEATS"); do
    OUT="$("$BIN" engine --threads "$THREADS" --batch "$BATCH" --steps "$STEPS")"
    echo "$OUT" | sed "s/^/[run $r] /"
    N_TRAIN+=("$(echo "$OUT" | awk -F': ' '/naslab train samples/ {print $2}')")
    N_FWD+=("$(echo "$OUT" | awk -F': ' '/naslab forward samples/ {print $2}')")
    OUT="$("$PYTHON" Benchmarks/pytorch/engine_bench.py --threads "$THREADS" --batch "$BATCH" --steps "$STEPS")"
    echo "$OUT" | sed "s/^/[run $r] /"
    P_TRAIN+=("$(echo "$OUT" | awk -F': ' '/pytorch train samples/ {print $2}')")
    P_FWD+=("$(echo "$OUT" | awk -F': ' '/pytorch forward samples/ {print $2}')")
done
NT=$(printf '%s\n' "${N_TRAIN[@]}" | best); NF=$(printf '%s\n' "${N_FWD[@]}" | best)
PT=$(printf '%s\n' "${P_TRAIN[@]}" | best); PF=$(printf '%s\n' "${P_FWD[@]}" | best)
PAIRED=$(for i in "${!N_TRAIN[@]}"; do awk -v a="${N_TRAIN[$i]}" -v b="${P_TRAIN[$i]}" 'BEGIN {printf "%.3f\n", a / b}'; done | sort -g | tr '\n' ' ')
echo "per-run train ratios (sorted; each run pairs naslab with the pytorch run right after it): $PAIRED"
echo "best of $REPEATS: naslab train $NT, forward $NF samples/s; pytorch train $PT, forward $PF samples/s"
echo "ratio naslab/pytorch forward samples/s: $(awk -v a="$NF" -v b="$PF" 'BEGIN {printf "%.3f", a / b}')"
echo "ratio naslab/pytorch train samples/s: $(awk -v a="$NT" -v b="$PT" 'BEGIN {printf "%.3f", a / b}')"
