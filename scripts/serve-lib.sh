# Sourced by scripts/fuzz-api.sh and Benchmarks/api-load.sh: starts `naslab serve` on a free
# loopback port with a temporary data directory and a fresh key, and stops it on exit.
#   start_naslab_server TAG    # needs $NASLAB; sets DATA, LOG, KEY, SERVER_PID, BASE
start_naslab_server() {
    local tag=$1
    DATA=$(mktemp -d "/tmp/naslab-$tag.XXXXXX")
    LOG=$DATA/server.log
    SERVER_PID=
    trap stop_naslab_server EXIT
    KEY=$("$NASLAB" keys create --org "$tag" --data-dir "$DATA")
    "$NASLAB" serve --host 127.0.0.1 --port 0 --data-dir "$DATA" --threads 1 --grace-period 5 >"$DATA/stdout" 2>"$LOG" &
    SERVER_PID=$!
    BASE=
    for _ in $(seq 1 100); do
        BASE=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$DATA/stdout" 2>/dev/null | head -1 || true)
        [ -n "$BASE" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "$tag: naslab serve exited" >&2; cat "$LOG" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$BASE" ] || { echo "$tag: server did not start" >&2; cat "$LOG" >&2; exit 1; }
}

stop_naslab_server() {
    if [ -n "${SERVER_PID:-}" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    [ -n "${DATA:-}" ] && rm -rf "$DATA"
}
