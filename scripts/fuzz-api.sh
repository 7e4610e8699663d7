#!/usr/bin/env bash
# Fuzzes the HTTP API with Schemathesis against openapi.yaml: any 5xx answer fails the run.
#
#   scripts/fuzz-api.sh                 # builds naslab (release) if needed, then fuzzes
#   NASLAB=path/to/naslab FUZZ_EXAMPLES=50 FUZZ_SECONDS=240 scripts/fuzz-api.sh
#
# Installs schemathesis into .venv-fuzz on first use (PyPI), starts `naslab serve` on loopback
# with a temporary data directory and a fresh key, runs the `not_a_server_error` check on every
# operation (bounded by FUZZ_EXAMPLES per operation and FUZZ_SECONDS overall), stops the server by
# its PID and exits non-zero on any server error (or if the server died).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
EXAMPLES=${FUZZ_EXAMPLES:-30}
SECONDS_LIMIT=${FUZZ_SECONDS:-180}
NASLAB=${NASLAB:-$ROOT/.build/release/naslab}

if [ ! -x "$NASLAB" ]; then
    swift build -c release --product naslab >&2
fi
if [ ! -x .venv-fuzz/bin/schemathesis ]; then
    python3 -m venv .venv-fuzz
    .venv-fuzz/bin/pip install --quiet schemathesis
fi

. "$ROOT/scripts/serve-lib.sh"
start_naslab_server fuzz-api
echo "fuzz-api: server $BASE (pid $SERVER_PID), $EXAMPLES examples per operation, ${SECONDS_LIMIT}s limit" >&2

# A trained, deployed model so that predict/deploy paths are exercised beyond their 404/409s.
ARCH='stem.width=8 stage1.depth=1 stage1.width=16 stage1.block0.op=conv stage1.block0.kernel=3 stage2.depth=1 stage2.width=32 stage2.block0.op=conv stage2.block0.kernel=3'
api() { curl -sS -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' "$@"; }
MODEL=$(api -d "{\"architecture\": \"$ARCH\", \"space\": \"small\"}" "$BASE/v1/models" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
JOB=$(api -d '{"dataset_id": "digits", "hyperparameters": {"epochs": 1}}' "$BASE/v1/models/$MODEL/train" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for _ in $(seq 1 300); do
    STATUS=$(api "$BASE/v1/jobs/$JOB" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
    [ "$STATUS" = completed ] || [ "$STATUS" = failed ] && break
    sleep 0.2
done
api -d '{"replicas": 1}' "$BASE/v1/models/$MODEL/deploy" >/dev/null

set +e
timeout --signal=INT $((SECONDS_LIMIT + 30)) .venv-fuzz/bin/schemathesis run "$ROOT/openapi.yaml" \
    --url "$BASE" \
    --header "Authorization: Bearer $KEY" \
    --checks not_a_server_error \
    --max-examples "$EXAMPLES" \
    --max-time "$SECONDS_LIMIT" \
    --workers 1 \
    --seed 1 \
    --generation-database none \
    --request-timeout 30 \
    --suppress-health-check all \
    --no-color
STATUS=$?
set -e
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "fuzz-api: the server died during the run" >&2
    cat "$LOG" >&2
    exit 1
fi
if grep -q "internal error" "$LOG"; then
    echo "fuzz-api: the server logged internal errors:" >&2
    grep "internal error" "$LOG" >&2
    STATUS=1
fi
echo "fuzz-api: schemathesis exit status $STATUS" >&2
exit "$STATUS"
