#!/usr/bin/env bash
# Load benchmark of the prediction endpoint while a NAS search trains: wrk against a deployed
# small model over loopback, in repeated rounds.
#
#   Benchmarks/api-load.sh              # 5 rounds × 20 s, 4 connections, 2 wrk threads, 2 replicas
#   ROUNDS=3 DURATION=60 CONNECTIONS=64 REPLICAS=2 Benchmarks/api-load.sh
#
# Starts `naslab serve` with a temporary data directory, trains the `small` space's conv/conv
# architecture on digits (2 epochs), deploys it, checks one prediction, starts a NAS search on
# digits (so that training competes with serving for the 2 cores), warms up 5 s, then runs ROUNDS
# wrk rounds (POST of one 1×8×8 digit image, top_k 3). Per round: requests/s, p50/p90/p99/max
# latency, 429s (documented back-pressure: more than --max-predictions-per-deployment in flight),
# other errors (non-2xx other than 429, socket errors) and the server's RSS after the round.
# Then it cancels the search and runs RSS_ROUNDS (default 4) more rounds of predictions alone: the
# search's own allocations (each candidate is another network) are not the server's serving
# memory, so the leak check compares these rounds only.
# Fails when any round has an error other than a 429, when the search failed, or when the RSS after
# the last predictions-only round exceeds the RSS after the first by more than RSS_GROWTH_LIMIT_PCT
# (default 3).
# Needs `wrk` (Debian package `wrk`; installed with apt-get when missing and running as root).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-20}
ROUNDS=${ROUNDS:-5}
RSS_ROUNDS=${RSS_ROUNDS:-4}
RSS_GROWTH_LIMIT_PCT=${RSS_GROWTH_LIMIT_PCT:-3}
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
SEARCH=$(api -d '{"task_type": "image_classification", "dataset_id": "digits", "search_space": "small", "constraints": {"max_params": 30000}, "budget": {"candidates": 200, "epochs_per_candidate": 2}, "seed": 1}' "$BASE/v1/nas/searches" | field id)
echo "api-load: search $SEARCH trains while the rounds run"
cat >"$DATA/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) limited = 0; other = 0 end
function response(status, headers, body)
    if status == 429 then limited = limited + 1 elseif status ~= 200 then other = other + 1 end
end
done = function(summary, latency, requests)
    local l, o = 0, 0
    for _, t in ipairs(threads) do l = l + t:get("limited"); o = o + t:get("other") end
    io.write(string.format("RESULT requests=%d duration_s=%.2f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f status429=%d other_errors=%d\n",
        summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
        l, o + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
rss() { awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
wrk -t "$THREADS" -c "$CONNECTIONS" -d 5s -s "$DATA/post.lua" "$BASE/v1/models/$MODEL/predict" >/dev/null
FAILED=0
round() {  # round LABEL: one wrk run; prints its RESULT line with the RSS after it
    local out result
    out=$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" -s "$DATA/post.lua" "$BASE/v1/models/$MODEL/predict")
    result=$(echo "$out" | grep '^RESULT')
    RSS=$(rss)
    echo "$result $1 rss_kib=$RSS"
    echo "$result" | grep -q 'other_errors=0$' || FAILED=1
}
for r in $(seq 1 "$ROUNDS"); do round "round=$r search=training"; done
STATUS=$(api "$BASE/v1/nas/searches/$SEARCH" | python3 -c "import json,sys; s=json.load(sys.stdin); print(s['status'], s['architectures_evaluated'])")
echo "api-load: search $SEARCH: $STATUS (status, candidates evaluated during the load)"
case "$STATUS" in failed*) echo "api-load: the search failed" >&2; FAILED=1 ;; esac
api -X POST "$BASE/v1/nas/searches/$SEARCH/cancel" >/dev/null
until [ "$(curl -s "$BASE/v1/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["queue"]["running"])')" = 0 ]; do sleep 0.2; done
FIRST_RSS=
for r in $(seq 1 "$RSS_ROUNDS"); do
    round "round=$r search=none"
    FIRST_RSS=${FIRST_RSS:-$RSS}
done
GROWTH=$(( (RSS - FIRST_RSS) * 100 / FIRST_RSS ))
echo "RESULT rounds=$ROUNDS+$RSS_ROUNDS duration_s=$DURATION connections=$CONNECTIONS replicas=$REPLICAS rss_first_kib=$FIRST_RSS rss_last_kib=$RSS rss_growth_pct=$GROWTH (predictions-only rounds)"
if [ "$GROWTH" -gt "$RSS_GROWTH_LIMIT_PCT" ]; then echo "api-load: RSS grew by $GROWTH % (limit $RSS_GROWTH_LIMIT_PCT %)" >&2; FAILED=1; fi
[ "$FAILED" = 0 ] || { echo "api-load: errors during the run" >&2; exit 1; }
