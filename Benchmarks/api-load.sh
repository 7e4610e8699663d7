#!/usr/bin/env bash
# Load benchmark of the prediction endpoint: wrk against a deployed small model over loopback.
#
#   Benchmarks/api-load.sh                      # 30 s, 4 connections, 2 wrk threads, 2 replicas
#   DURATION=60 CONNECTIONS=8 REPLICAS=2 Benchmarks/api-load.sh
#
# Starts `naslab serve` with a temporary data directory, trains the `small` space's conv/conv
# architecture on digits (2 epochs), deploys it, checks one prediction, then runs wrk (POST of
# one 1×8×8 digit image, top_k 3) and prints requests/s, p50/p99 latency, errors (non-2xx and
# socket errors) and the server's RSS before and after (after a warm-up run of 5 s).
# Needs `wrk` (Debian package `wrk`; installed with apt-get when missing and running as root).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-30}
CONNECTIONS=${CONNECTIONS:-4}
THREADS=${WRK_THREADS:-2}
REPLICAS=${REPLICAS:-2}
NASLAB=${NASLAB:-$ROOT/.build/release/naslab}

if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ]; then apt-get install -y wrk >/dev/null; else echo "api-load: install wrk (apt-get install wrk)" >&2; exit 1; fi
fi
[ -x "$NASLAB" ] || swift build -c release --product naslab >&2

. "$ROOT/scripts/serve-lib.sh"
start_naslab_server api-load

api() { curl -sS -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
ARCH='stem.width=8 stage1.depth=1 stage1.width=16 stage1.block0.op=conv stage1.block0.kernel=3 stage2.depth=1 stage2.width=32 stage2.block0.op=conv stage2.block0.kernel=3'
MODEL=$(api -d "{\"architecture\": \"$ARCH\", \"space\": \"small\"}" "$BASE/v1/models" | field id)
JOB=$(api -d '{"dataset_id": "digits", "hyperparameters": {"epochs": 2}}' "$BASE/v1/models/$MODEL/train" | field id)
until [ "$(api "$BASE/v1/jobs/$JOB" | field status)" = completed ]; do sleep 0.2; done
DEPLOYMENT=$(api -d "{\"replicas\": $REPLICAS}" "$BASE/v1/models/$MODEL/deploy" | field id)
until [ "$(api "$BASE/v1/deployments/$DEPLOYMENT" | field status)" = running ]; do sleep 0.2; done

BODY='{"inputs": {"images": [[0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,0,5,8,0,0,9,8,0,0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0]]}, "parameters": {"top_k": 3}}'
echo "api-load: one prediction: $(api -d "$BODY" "$BASE/v1/models/$MODEL/predict")"
cat >"$DATA/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
done = function(summary, latency, requests)
    io.write(string.format("RESULT requests=%d duration_s=%.2f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d errors=%d\n",
        summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
        summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
rss() { awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
wrk -t "$THREADS" -c "$CONNECTIONS" -d 5s -s "$DATA/post.lua" "$BASE/v1/models/$MODEL/predict" >/dev/null
RSS_BEFORE=$(rss)
OUT=$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --latency -s "$DATA/post.lua" "$BASE/v1/models/$MODEL/predict")
RSS_AFTER=$(rss)
echo "$OUT"
echo "RESULT rss_before_kib=$RSS_BEFORE rss_after_kib=$RSS_AFTER replicas=$REPLICAS connections=$CONNECTIONS duration_s=$DURATION"
RESULT=$(echo "$OUT" | grep '^RESULT')
if echo "$RESULT" | grep -q 'non2xx=0 errors=0'; then exit 0; fi
echo "api-load: errors during the run" >&2
exit 1
