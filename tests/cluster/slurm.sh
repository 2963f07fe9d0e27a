#!/usr/bin/env bash
# A one-node SLURM cluster on this machine (munged + slurmctld + slurmd from Debian's packages),
# with a fake GPU, for tests/cluster/run_cluster_test.sh. Needs root and apt (Debian/Ubuntu).
#
#   bash tests/cluster/slurm.sh up      install if missing, configure, start what is not running
#   bash tests/cluster/slurm.sh down    stop the daemons that 'up' started (by their pid)
#   bash tests/cluster/slurm.sh purge   down, then remove this script's config and state files
#                                       (add --packages to also apt-get purge the packages)
#   bash tests/cluster/slurm.sh status
#
# 'up' is idempotent: run twice, it starts nothing twice. It refuses to touch a slurm.conf it
# did not write (a real cluster's). Exit status 77 means "cannot run here" (not root, no apt,
# packages not installable, a foreign slurm.conf): callers treat it as a skip.
#
# The fake GPU: gres.conf declares gpu:1 backed by /dev/null (a GRES needs an existing device
# file). SLURM then does real GPU bookkeeping: a job asking --gpus=1 gets CUDA_VISIBLE_DEVICES=0
# and GPU jobs queue behind each other; no device is touched. Two partitions, 'cpu' (default)
# and 'gpu', hold the same node, so the test can check which partition each job went to.
set -euo pipefail

PKGS=(slurmctld slurmd slurm-client munge)
STATE=/run/hmifbench-slurm            # pid files of the daemons this script started
MARK="# hmifbench test cluster: written by tests/cluster/slurm.sh"
CONF=/etc/slurm/slurm.conf
GRES=/etc/slurm/gres.conf

say() { echo "[slurm.sh] $*"; }
skip() { say "SKIP: $*"; exit 77; }

alive() {  # alive PID: the process exists and is not a zombie (PID 1 may not reap here)
    local pid=$1
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

pid_of() { [ -s "$1" ] && cat "$1" || true; }

installed() {
    local p
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || return 1
    done
}

install() {
    if installed; then
        say "packages already installed: ${PKGS[*]}"
        return
    fi
    command -v apt-get >/dev/null || skip "no apt-get to install ${PKGS[*]}"
    local t0=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || skip "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${PKGS[@]}" >/dev/null \
        || skip "apt-get install ${PKGS[*]} failed"
    say "installed ${PKGS[*]} in $((SECONDS - t0)) s"
}

write_config() {
    if [ -e "$CONF" ] && [ "$(head -1 "$CONF")" != "$MARK" ]; then
        skip "$CONF exists and was not written by this script; not touching a real cluster"
    fi
    local host nodeline
    host=$(hostname -s)
    nodeline=$(slurmd -C | head -1)   # NodeName=<host> CPUs=... RealMemory=...
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm "$STATE"
    chown slurm:slurm /var/spool/slurmctld /var/log/slurm
    cat >"$CONF.new" <<CONF
$MARK
ClusterName=hmiftest
SlurmctldHost=$host
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# no systemd or cgroups needed
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
JobAcctGatherType=jobacct_gather/linux
# no slurmdbd: Snakemake must use 'squeue' for job status, which sees a job MinJobAge s after it ends
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=600
GresTypes=gpu
$nodeline Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host Default=NO MaxTime=INFINITE State=UP
CONF
    cat >"$GRES.new" <<CONF
$MARK
AutoDetect=off
NodeName=$host Name=gpu File=/dev/null
CONF
    local changed=0
    cmp -s "$CONF.new" "$CONF" || changed=1
    cmp -s "$GRES.new" "$GRES" || changed=1
    mv "$CONF.new" "$CONF"
    mv "$GRES.new" "$GRES"
    if [ "$changed" = 1 ]; then
        say "wrote $CONF and $GRES"
        stop_ours   # daemons of ours running with an older config: restart them
    fi
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        say "munged already running"
        return
    fi
    [ -s /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged
    local i
    for i in $(seq 1 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.2
    done
    munge -n | unmunge >/dev/null || { say "munged did not start"; exit 1; }
    pid_of /run/munge/munged.pid >"$STATE/munged.pid"
    say "started munged (pid $(cat "$STATE/munged.pid"))"
}

start_daemon() {  # start_daemon NAME: slurmctld or slurmd, unless its pid file names a live one
    local name=$1 pidfile=/run/$1.pid pid
    pid=$(pid_of "$pidfile")
    if alive "$pid" && [ "$(cat "/proc/$pid/comm")" = "$name" ]; then
        say "$name already running (pid $pid)"
        return
    fi
    rm -f "$pidfile"
    "/usr/sbin/$name"
    local i
    for i in $(seq 1 50); do
        pid=$(pid_of "$pidfile")
        alive "$pid" && break
        sleep 0.2
    done
    alive "$pid" || { say "$name did not start; see /var/log/slurm/$name.log"; tail -5 "/var/log/slurm/$name.log" || true; exit 1; }
    echo "$pid" >"$STATE/$name.pid"
    say "started $name (pid $pid)"
}

wait_idle() {
    local host state i
    host=$(hostname -s)
    for i in $(seq 1 60); do
        state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -1 || true)
        case "$state" in
            idle|mixed|allocated|completing) say "node $host is $state"; return ;;
            down*|drain*|inval*|fail*)
                scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
        esac
        sleep 0.5
    done
    say "node $host did not become idle (state: ${state:-unknown})"
    sinfo -R || true
    tail -5 /var/log/slurm/slurmctld.log || true
    exit 1
}

stop_pidfile() {  # stop_pidfile FILE: TERM, then KILL, the process named in FILE; remove FILE
    local file=$1 pid name i
    pid=$(pid_of "$file")
    name=$(basename "$file" .pid)
    rm -f "$file"
    alive "$pid" || return 0
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        alive "$pid" || { say "stopped $name (pid $pid)"; return 0; }
        sleep 0.2
    done
    kill -9 "$pid" 2>/dev/null || true
    say "killed $name (pid $pid)"
}

stop_ours() {
    local d
    for d in slurmd slurmctld munged; do   # the reverse of the start order
        [ -e "$STATE/$d.pid" ] && stop_pidfile "$STATE/$d.pid"
    done
    # a daemon's own pid file left behind (slurmctld's makes the package's prerm run scancel)
    for d in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
        if [ -e "$d" ] && ! alive "$(pid_of "$d")"; then rm -f "$d"; fi
    done
    return 0
}

cmd_up() {
    [ "$(id -u)" = 0 ] || skip "needs root"
    local t0=$SECONDS
    install
    write_config
    start_munge
    start_daemon slurmctld
    start_daemon slurmd
    wait_idle
    say "cluster up in $((SECONDS - t0)) s"
}

cmd_down() {
    [ -d "$STATE" ] || { say "nothing started by this script"; return; }
    stop_ours
}

cmd_purge() {
    cmd_down
    if [ -e "$CONF" ] && [ "$(head -1 "$CONF")" = "$MARK" ]; then
        rm -f "$CONF" "$GRES"
        rm -rf /var/spool/slurmctld/* /var/spool/slurmd/* "$STATE"
        say "removed the test cluster's config and state"
    fi
    if [ "${1:-}" = --packages ] && installed; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${PKGS[@]}" >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get autoremove -y -q >/dev/null
        say "purged ${PKGS[*]}"
    fi
}

cmd_status() {
    local f
    for f in "$STATE"/*.pid; do
        [ -e "$f" ] || continue
        if alive "$(cat "$f")"; then say "$(basename "$f" .pid) running (pid $(cat "$f"))"; fi
    done
    sinfo 2>/dev/null || say "no SLURM controller answering"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    purge) shift; cmd_purge "$@" ;;
    status) cmd_status ;;
    *) echo "usage: $0 up|down|purge [--packages]|status" >&2; exit 2 ;;
esac
