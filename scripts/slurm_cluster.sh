#!/usr/bin/env bash
# A real single-node SLURM cluster (Debian's slurm-wlm 22.05) for tests and trying launcher=slurm.
#
#   eval "$(scripts/slurm_cluster.sh start)"   # installs what is missing, starts, prints `export SLURM_CONF=...`
#   scripts/slurm_cluster.sh status            # exit 0 when every daemon answers
#   scripts/slurm_cluster.sh stop              # stops only the daemons this script started
#
# Runs as root without systemd: munged, mariadbd + slurmdbd (so sacct works), slurmctld, slurmd.
# Everything (configs, spool, logs, pid files, database) lives in $PAI_SWEEP_SLURM_DIR
# (default /tmp/pai-sweep-slurm). Private ports keep it clear of a system install.
# Only stdout carries the export line; progress goes to stderr.
set -euo pipefail

STATE=${PAI_SWEEP_SLURM_DIR:-/tmp/pai-sweep-slurm}
CLUSTER=paisweep
CTLD_PORT=${PAI_SWEEP_SLURM_PORT:-16817}  # slurmd, slurmdbd and MariaDB use the next ports
SLURMD_PORT=$((CTLD_PORT + 1))
DBD_PORT=$((CTLD_PORT + 2))
DB_PORT=$((CTLD_PORT + 3))
PIDS=$STATE/pids
export SLURM_CONF=$STATE/slurm.conf

say() { echo "slurm_cluster: $*" >&2; }
die() { say "$*"; exit 1; }

alive() {  # alive NAME: the pid in our pid file runs that program
    local f=$PIDS/$1.pid pid
    [[ -s $f ]] || return 1
    pid=$(cat "$f")
    [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$1"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local limit=$1 what=$2 i
    shift 2
    for ((i = 0; i < limit * 4; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    die "$what did not come up within ${limit}s; see the logs in $STATE/log"
}

install_missing() {
    local need=() pkg
    for pkg in slurm-wlm slurmdbd munge mariadb-server; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
    done
    ((${#need[@]})) || return 0
    [[ $(id -u) == 0 ]] || die "installing ${need[*]} needs root (apt-get)"
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${need[@]}" >&2 \
        || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${need[@]}" >&2; }
}

write_configs() {
    mkdir -p "$STATE"/{spool/ctld,spool/d,log,munge} "$PIDS"
    local cpus mem
    cpus=$(nproc)
    mem=$(($(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024))
    cat >"$STATE/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MailProg=/bin/true
ReturnToService=2
# Short waits: a cancelled or requeued job is gone in seconds, a lost node is noticed in a minute.
KillWait=5
SlurmdTimeout=60
MinJobAge=300
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$PIDS/slurmctld.pid
SlurmdPidFile=$PIDS/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
JobAcctGatherType=jobacct_gather/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$STATE/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$PIDS/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$STATE/slurmdbd.conf"
}

munge_ok() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    if munge_ok; then return 0; fi  # a munged is already serving the default socket: use it
    mkdir -p /run/munge
    [[ -s $STATE/munge/munge.key ]] || dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$STATE/munge/munge.key"
    say "starting munged"
    munged -f --key-file="$STATE/munge/munge.key" --pid-file="$PIDS/munged.pid" \
        --log-file="$STATE/log/munged.log" --seed-file="$STATE/munge/munge.seed"
    wait_for 10 munged munge_ok
}

db_ok() { mariadb --no-defaults --socket="$STATE/mysql.sock" -u root -e "select 1"; }

start_mariadb() {
    alive mariadbd && return 0
    if [[ ! -d $STATE/mysql/mysql ]]; then
        say "initialising the accounting database"
        mariadb-install-db --no-defaults --datadir="$STATE/mysql" --user=root \
            --auth-root-authentication-method=normal --skip-test-db >"$STATE/log/mariadb-install.log" 2>&1 \
            || die "mariadb-install-db failed; see $STATE/log/mariadb-install.log"
    fi
    say "starting mariadbd"
    mariadbd --no-defaults --datadir="$STATE/mysql" --socket="$STATE/mysql.sock" --port="$DB_PORT" \
        --bind-address=127.0.0.1 --pid-file="$PIDS/mariadbd.pid" --user=root \
        --log-error="$STATE/log/mariadb.log" >/dev/null 2>&1 &
    wait_for 60 mariadbd db_ok
    mariadb --no-defaults --socket="$STATE/mysql.sock" -u root -e \
        "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
         GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"
}

start_slurmdbd() {
    alive slurmdbd && return 0
    say "starting slurmdbd"
    # slurmdbd reads slurmdbd.conf from the folder of $SLURM_CONF
    slurmdbd 2>>"$STATE/log/slurmdbd.log" \
        || die "slurmdbd failed; see $STATE/log/slurmdbd.log"
    wait_for 30 slurmdbd sacctmgr -n list cluster
    sacctmgr -n list cluster format=cluster | grep -qw $CLUSTER || sacctmgr -i add cluster $CLUSTER >&2
}

start_slurm() {
    if ! alive slurmctld; then
        say "starting slurmctld"
        slurmctld 2>>"$STATE/log/slurmctld.log" || die "slurmctld failed; see $STATE/log/slurmctld.log"
    fi
    wait_for 30 slurmctld scontrol ping
    if ! alive slurmd; then
        say "starting slurmd"
        slurmd -N localhost 2>>"$STATE/log/slurmd.log" || die "slurmd failed; see $STATE/log/slurmd.log"
    fi
    wait_for 30 "the node" node_up
}

node_up() { sinfo -h -N -o "%t" | grep -Eq '^(idle|mix|alloc)'; }

cluster_ok() { munge_ok && scontrol ping >/dev/null 2>&1 && node_up && sacct -n -X -S now >/dev/null 2>&1; }

start() {
    install_missing
    if cluster_ok; then
        say "already running"
    else
        write_configs
        start_munge
        start_mariadb
        start_slurmdbd
        start_slurm
        say "up: $(sinfo -h -o '%P %D %t' | tr '\n' ' ')"
    fi
    echo "export SLURM_CONF=$SLURM_CONF"
}

stop_one() {  # stop_one NAME: SIGTERM the pid we recorded, wait for it to exit
    local name=$1 pid i
    alive "$name" || { rm -f "$PIDS/$name.pid"; return 0; }
    pid=$(cat "$PIDS/$name.pid")
    say "stopping $name ($pid)"
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 80; i++)); do
        [[ -e /proc/$pid ]] || break
        sleep 0.25
    done
    [[ -e /proc/$pid ]] && kill -9 "$pid" 2>/dev/null || true
    rm -f "$PIDS/$name.pid"
}

stop() {
    # munged.pid exists only when this script started munged (a reused one is left alone).
    for name in slurmd slurmctld slurmdbd mariadbd munged; do stop_one "$name"; done
}

status() {
    local name
    for name in munged mariadbd slurmdbd slurmctld slurmd; do
        if alive "$name"; then say "$name running ($(cat "$PIDS/$name.pid"))"; else say "$name not started here"; fi
    done
    cluster_ok || { say "cluster not answering"; return 1; }
    say "cluster answering: $(sinfo -h -o '%P %D %t' | tr '\n' ' ')"
    echo "export SLURM_CONF=$SLURM_CONF"
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) status ;;
*) die "usage: $0 start|stop|status (state in \$PAI_SWEEP_SLURM_DIR, default /tmp/pai-sweep-slurm)" ;;
esac
