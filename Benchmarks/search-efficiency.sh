#!/usr/bin/env bash
# Equal wall-clock search efficiency on Fashion-MNIST, `medium` space, the shipped constraints,
# 2 threads: for each seed, (a) regularized evolution with full training (every candidate trains
# the shipped 2 epochs; Experiments/fashion-mnist-medium.yaml) and (b) the efficient configuration
# (Experiments/fashion-mnist-efficient.yaml: synflow warm start + pre-screening, ASHA over 1/2/4
# epochs), each with budget.wall_minutes = MINUTES (both stop starting new jobs then and finish
# the job in progress). The two sides alternate (a, b, a, b, …) so load changes hit both.
# Reports each run's best candidate (chosen by validation accuracy) and its test accuracy, and
# last the means over the seeds. About 6 × 16 minutes with the defaults.
#   SEEDS="1 2 3"  MINUTES=15
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-"1 2 3"}
MINUTES=${MINUTES:-15}
OUT=Benchmarks/out/search-efficiency
mkdir -p "$OUT"
swift build -c release --product naslab >/dev/null
naslab=.build/release/naslab
best() {  # test accuracy of the record's best candidate (by validation accuracy), and how many were trained
    python3 - "$1" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
c = f["candidates"][:]
best = int(f.attrs["best_candidate_id"])
row = c[c["id"] == best][0]
trained = sum(1 for s in c["status"] if s.decode() != "rejected")
print("%.4f %.4f %d" % (row["test_accuracy"], row["val_accuracy"], trained))
PY
}
# Both sides screen max_latency_ms with the per-op table: build it first (2 threads, the
# candidates' count), so that no run pays for measuring ops the other found already.
$naslab latency build-table --spaces medium --input 1x28x28 --samples 300 --threads 2 --overwrite > "$OUT/latency-table.txt"
declare -A sum=([efficient]=0 [full]=0)
n=0
for seed in $SEEDS; do
    for side in full efficient; do
        config=Experiments/fashion-mnist-$([ $side = full ] && echo medium || echo efficient).yaml
        # The budget: the same wall-clock minutes for both sides (an override of the config's).
        sed "s/^  wall_minutes: .*/  wall_minutes: $MINUTES/" "$config" > "$OUT/$side-$seed.yaml"
        [ $side = full ] && sed -i "s/^  candidates: .*/  candidates: 1000/" "$OUT/$side-$seed.yaml"
        start=$(date +%s)
        $naslab search "$OUT/$side-$seed.yaml" --seed "$seed" --output "$OUT/$side-$seed.h5" --overwrite --quiet > "$OUT/$side-$seed.txt"
        read -r test val trained < <(best "$OUT/$side-$seed.h5")
        echo "seed $seed $side: best test accuracy $test (validation $val), $trained candidates trained, $(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg)"
        sum[$side]=$(python3 -c "print(${sum[$side]} + $test)")
    done
    n=$((n + 1))
done
python3 -c "print('equal-time best test accuracy: efficient %.4f vs full-training %.4f' % (${sum[efficient]} / $n, ${sum[full]} / $n))"
