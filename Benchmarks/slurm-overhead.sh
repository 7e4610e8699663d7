#!/usr/bin/env bash
# Overhead per candidate through Slurm vs local, measured in one run on the same machine:
# the same digits search (small space, 1 epoch per candidate, 2 candidates per job array) with
# `executor: local` and with `executor: slurm`. Needs a running cluster (SLURM_CONF), e.g.
#   SLURM_EXPORT=$(.ci/slurm-up.sh /tmp/naslab-slurm) && eval "$SLURM_EXPORT"
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${BUDGET:-8}
OUT=$(mktemp -d /tmp/naslab-slurm-overhead.XXXXXX)
swift build -c release --product naslab >/dev/null
NASLAB=$(pwd)/.build/release/naslab
for kind in local slurm; do
    cat > "$OUT/$kind.yaml" <<YAML
name: overhead-$kind
seed: 5
space: small
dataset: digits
searcher: {kind: random}
budget: {candidates: $BUDGET}
training: {epochs: 1, batch_size: 64, learning_rate: 0.05}
threads: 1
workers: 2
output: $OUT/$kind.h5
executor:
  kind: $kind
  shared_dir: $OUT/shared
  worker_command: [$NASLAB, evaluate]
YAML
    start=$(date +%s.%N)
    "$NASLAB" search "$OUT/$kind.yaml" --quiet > "$OUT/$kind.txt"
    end=$(date +%s.%N)
    secs=$(python3 -c "print(round(($end - $start) / $BUDGET, 3))")
    echo "$kind: $secs s wall per candidate ($BUDGET candidates, 2 per batch)"
    eval "${kind}_per=$secs"
done
echo "slurm overhead per candidate: $(python3 -c "print(round($slurm_per - $local_per, 3))") s"
