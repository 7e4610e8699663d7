#!/usr/bin/env bash
# Brings up a real single-node Slurm cluster (slurmctld + slurmd + munge, no systemd) for tests.
#
#   eval "$(.ci/slurm-up.sh DIR)"      # DIR: scratch directory for conf, state, logs and PID files
#
# Installs the packages if missing (apt-get, as root), creates the munge key if missing, starts
# munged as the munge user, writes DIR/slurm.conf, wipes old state, starts slurmctld and slurmd,
# waits (bounded) until the node is idle and runs a trivial job. Progress goes to stderr; the only
# line on stdout is `export SLURM_CONF=DIR/slurm.conf`. Tear down with `.ci/slurm-down.sh DIR`.
# Run again on the same DIR to restart from a clean state (stops that DIR's daemons first).
set -euo pipefail

log() { echo "slurm-up: $*" >&2; }
fail() {
    log "ERROR: $*"
    for f in "${DIR:-/nonexistent}/log/slurmctld.log" "${DIR:-/nonexistent}/log/slurmd.log" /var/log/munge/munged.log; do
        if [ -s "$f" ]; then
            echo "---- tail of $f" >&2
            tail -n 25 "$f" >&2
        fi
    done
    exit 1
}

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "slurm-up: must run as root (installs packages, starts daemons)" >&2; exit 2; }
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
START=$(date +%s)

# ---- packages
PACKAGES=(slurmctld slurmd slurm-client munge)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || fail "missing packages ${missing[*]} and no apt-get"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || fail "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null 2>"$DIR/apt.err" \
        || { cat "$DIR/apt.err" >&2; fail "apt-get install failed"; }
fi

# ---- a previous cluster in this DIR: stop it (by its PID files) so that we start clean
if [ -f "$DIR/slurm.conf" ]; then
    for name in slurmctld slurmd; do
        pidfile="$DIR/run/$name.pid"
        if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            log "a cluster is already running from $DIR: stopping it first"
            "$HERE/slurm-down.sh" "$DIR" >&2 || fail "could not stop the previous cluster"
            break
        fi
    done
fi

# ---- munge
mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    mungekey --create --keyfile=/etc/munge/munge.key || fail "mungekey failed"
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
mkdir -p "$DIR/run" "$DIR/log" "$DIR/ctld" "$DIR/spool"
MUNGE_PID=/run/munge/munged.pid
if [ -s "$MUNGE_PID" ] && kill -0 "$(cat "$MUNGE_PID")" 2>/dev/null; then
    log "munged already running (pid $(cat "$MUNGE_PID"))"
else
    runuser -u munge -- /usr/sbin/munged || fail "munged did not start"
    # Remember that we started it, so that slurm-down.sh stops it (and only then).
    echo "$MUNGE_PID" > "$DIR/run/munged.started"
fi
for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.1
done
munge -n | unmunge >/dev/null 2>&1 || fail "munge does not work (munge -n | unmunge)"

# ---- slurm.conf
H=$(hostname -s)
CPUS=$(nproc)
MEM=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)
CONF="$DIR/slurm.conf"
cat > "$CONF" <<CONF
# Written by .ci/slurm-up.sh: a single-node test cluster on $H.
ClusterName=ci
SlurmctldHost=${H}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=${DIR}/log/jobcomp.txt
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=3600
KillWait=5
StateSaveLocation=${DIR}/ctld
SlurmdSpoolDir=${DIR}/spool
SlurmctldPidFile=${DIR}/run/slurmctld.pid
SlurmdPidFile=${DIR}/run/slurmd.pid
SlurmctldLogFile=${DIR}/log/slurmctld.log
SlurmdLogFile=${DIR}/log/slurmd.log
NodeName=${H} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM} State=UNKNOWN
PartitionName=debug Nodes=${H} Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$CONF"

# ---- wipe old state (or old jobs come back), then start the daemons
rm -rf "$DIR/ctld" "$DIR/spool"
mkdir -p "$DIR/ctld" "$DIR/spool"
rm -f "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" "$DIR/log/jobcomp.txt" "$DIR/run/slurmctld.pid" "$DIR/run/slurmd.pid"
slurmctld -f "$CONF" || fail "slurmctld did not start"
slurmd -f "$CONF" || fail "slurmd did not start"

# The daemons exit 0 even when they die a moment later: wait until the node is idle.
state=""
for _ in $(seq 120); do
    state=$(timeout 5 sinfo -h -N -o %t 2>/dev/null | head -n 1 || true)
    [ "$state" = "idle" ] && break
    sleep 0.25
done
[ "$state" = "idle" ] || fail "node not idle after 30 s (sinfo says '${state:-nothing}')"

# ---- prove it works
out=$(timeout 60 srun -N1 -n1 -t 1 /bin/echo slurm-ok 2>&1) || fail "trivial job failed: $out"
[ "$out" = "slurm-ok" ] || fail "trivial job printed '$out'"

log "cluster up in $(( $(date +%s) - START )) s: node $H, $CPUS CPUs, ${MEM} MB; slurmctld pid $(cat "$DIR/run/slurmctld.pid"), slurmd pid $(cat "$DIR/run/slurmd.pid")"
echo "export SLURM_CONF=$CONF"
