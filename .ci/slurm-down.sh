#!/usr/bin/env bash
# Tears down the cluster that `.ci/slurm-up.sh DIR` started: cancels all jobs, waits (bounded)
# for the queue to drain, then stops slurmd, slurmctld and (if slurm-up.sh started it) munged by
# their PID files — never by process name. Safe to run when nothing is running.
set -uo pipefail

log() { echo "slurm-down: $*" >&2; }
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
[ -d "$1" ] || { log "$1 does not exist: nothing to stop"; exit 0; }
DIR=$(cd "$1" && pwd)
export SLURM_CONF="$DIR/slurm.conf"

# Stops the process in PIDFILE if it is alive and its command name is EXPECTED (guards against
# a stale PID file whose number now belongs to another process).
stop_pidfile() {
    local pidfile=$1 expected=$2 pid comm
    [ -s "$pidfile" ] || { log "$expected: no PID file ($pidfile)"; return 0; }
    pid=$(cat "$pidfile")
    if ! kill -0 "$pid" 2>/dev/null; then
        log "$expected: pid $pid not running"
        rm -f "$pidfile"
        return 0
    fi
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    if [ "$comm" != "$expected" ]; then
        log "$expected: pid $pid is '$comm', not $expected: leaving it alone"
        return 0
    fi
    kill -TERM "$pid"
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || { log "$expected (pid $pid) stopped"; rm -f "$pidfile"; return 0; }
        sleep 0.1
    done
    log "$expected (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

ctld_pid=$(cat "$DIR/run/slurmctld.pid" 2>/dev/null || true)
if [ -n "$ctld_pid" ] && kill -0 "$ctld_pid" 2>/dev/null && [ -f "$SLURM_CONF" ]; then
    jobs=$(timeout 10 squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ' || true)
    if [ -n "${jobs// /}" ]; then
        log "cancelling jobs: $jobs"
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs 2>/dev/null || true
    fi
    drained=0
    for _ in $(seq 60); do
        active=$(timeout 5 squeue -h -t PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING -o %i 2>/dev/null | wc -l)
        [ "$active" -eq 0 ] && { drained=1; break; }
        sleep 0.5
    done
    [ $drained -eq 1 ] || log "queue did not drain within 30 s; stopping the daemons anyway"
fi

stop_pidfile "$DIR/run/slurmd.pid" slurmd
stop_pidfile "$DIR/run/slurmctld.pid" slurmctld
if [ -f "$DIR/run/munged.started" ]; then
    stop_pidfile "$(cat "$DIR/run/munged.started")" munged
    rm -f "$DIR/run/munged.started"
elif [ -s /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; then
    log "munged was not started by slurm-up.sh for $DIR: leaving it running"
fi
exit 0
