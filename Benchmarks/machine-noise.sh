#!/usr/bin/env bash
# How steady this machine's speed is over seconds: the bound on any latency measurement and
# predictor here (docs/latency.md, "Machine speed").
#
# Builds release naslab-bench and runs `naslab-bench machine-noise` for each thread count: every
# second it alternates the measurement protocol's reference network (batch 1, 15 passes, the
# protocol's clock) with one read of a 64 MB buffer (memory bandwidth), and prints both per-second
# medians. Then the reference network alone (no stream: nothing evicts its caches).
# The last line is `per-second spread: reference <x> %, memory stream <y> %` (largest per-second
# median over the smallest, minus 1). Run it on an otherwise idle machine: what it shows then is
# the host (other tenants on the same cores and memory), which no protocol on this side removes.
#
# Environment: THREADS="1 2", SECONDS_PER_RUN=20.
set -euo pipefail
cd "$(dirname "$0")/.."
noise() {   # builds (release, once) and runs naslab-bench machine-noise
    swift run -c release --scratch-path "${SCRATCH_PATH:-.build}" naslab-bench machine-noise --seconds "${SECONDS_PER_RUN:-20}" "$@"
}
for t in ${THREADS:-1 2}; do echo "== threads $t, reference network alone"; noise --threads "$t" --megabytes 0 | tail -1; done
for t in ${THREADS:-1 2}; do echo "== threads $t, reference network and memory stream"; noise --threads "$t" --megabytes 64; done
