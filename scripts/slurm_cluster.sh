#!/usr/bin/env bash
# A real single-node Slurm cluster on localhost, for the launcher's tests (Debian bookworm, root, no systemd).
#
#   scripts/slurm_cluster.sh          install what is missing, write the config, start what is not running,
#                                     wait until the node is idle (~20 s from nothing, < 1 s when already up)
#   scripts/slurm_cluster.sh stop     stop every daemon it started (by pid file), in reverse order
#   scripts/slurm_cluster.sh status   say which daemons run, and the node's state
#
# Environment:
#   WITH_ACCOUNTING=1 (default)  MariaDB + slurmdbd, so that `sacct` works: submitit reads job states from sacct,
#                                without it every state is UNKNOWN and failures go unseen.
#   FAKE_CPUS=N                  advertise N CPUs (SlurmdParameters=config_overrides): more jobs side by side.
#   SLURM_PURGE_STATE=1          wipe slurmctld's saved state before starting (job ids restart at 1).
#   SLURM_EXTRA_CONF=LINES       slurm.conf lines added at its end (a test's site limits: another partition with a
#                                MaxTime, EnforcePartLimits=ALL, AccountingStorageEnforce=limits); the script run
#                                again without it restores its own configuration (both daemons restarted).
#
# Settings that matter (see ../shared/reference/slurm.md):
#   AuthInfo=cred_expire=10                    a requeued job restarts ~12 s later (default: ~2 min)
#   DependencyParameters=kill_invalid_depend   dependents of a failed job are cancelled, never pend forever
#   proctrack/linuxproc + task/none            no cgroups needed
# Idempotent: the daemons are restarted only when slurm.conf changed (most settings need a restart).
set -euo pipefail

WITH_ACCOUNTING=${WITH_ACCOUNTING:-1}
FAKE_CPUS=${FAKE_CPUS:-}
NODE=$(hostname -s)
CLUSTER=ci
CONF=/etc/slurm
LOG=/var/log/slurm
RUN=/run/slurm
PIDFILES=("$RUN/slurmd.pid" "$RUN/slurmctld.pid" "$RUN/slurmdbd.pid" /run/mysqld/mysqld.pid /run/munge/munged.pid)

say() { echo "[slurm_cluster] $*" >&2; }
# A pid file names a live daemon only while its pid runs that daemon's program: after a reboot, or a VM restored from
# a snapshot, a stale file's pid may belong to any process (once, the test run itself), never to be signalled.
alive() {
  local f=$1 pid comm
  [ -s "$f" ] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  ! grep -qs '^State:[[:space:]]*Z' "/proc/$pid/status" || return 1  # a zombie has exited: runs nothing
  case "$(basename "$f" .pid)" in
    mysqld) [ "$comm" = mariadbd ] || [ "$comm" = mysqld ] ;;
    *) [ "$comm" = "$(basename "$f" .pid)" ] ;;
  esac
}

stop_pidfile() {  # stop the one daemon recorded in a pid file, and wait until it is gone
  local f=$1 pid
  alive "$f" || return 0
  pid=$(cat "$f" 2>/dev/null) || return 0
  kill "$pid"
  for _ in $(seq 1 50); do
    alive "$f" || { say "stopped $(basename "$f" .pid) ($pid)"; return 0; }
    sleep 0.2
  done
  alive "$f" && kill -9 "$pid" 2>/dev/null || true
}

install_packages() {  # the Debian packages named, where any is missing
  if ! dpkg -s "$@" >/dev/null 2>&1; then
    say "installing $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  fi
}

start_munge() {  # the system's munged (/run/munge), unless it runs; returns once a credential round-trips
  # no systemd: the runtime folders tmpfiles.d would create are made here; munged refuses to run as root
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
      || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
  install -d -o munge -g munge -m 755 /run/munge
  alive /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 1 50); do munge -n | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n | unmunge >/dev/null || { say "munge does not work"; exit 1; }
}

scheduling_conf() {  # the slurm.conf lines both localhost clusters share (this one, slurm_two_nodes.sh's)
  cat <<'EOF'
JobCompType=jobcomp/none
SchedulerType=sched/backfill
DependencyParameters=kill_invalid_depend
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=600
KillWait=5
Waittime=0
EOF
}

daemon_states() {  # `<name>: running (<pid>)` or `<name>: stopped` for each pid file after the first argument (a
                   # folder: a pid file's name is its path below it, without .pid; "": its file name), then the nodes
  local below=$1 f name
  shift
  for f in "$@"; do
    if [ -n "$below" ]; then name=${f#"$below"/}; else name=${f##*/}; fi
    name=${name%.pid}
    if alive "$f"; then echo "$name: running ($(cat "$f"))"; else echo "$name: stopped"; fi
  done
  sinfo -h -N -o "%N %t" 2>/dev/null || true
}

# sourced (tests/test_slurm_cluster_script.py, scripts/slurm_two_nodes.sh): the functions above only
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

case "${1:-start}" in
  stop)
    for f in "${PIDFILES[@]}"; do stop_pidfile "$f"; done
    exit 0 ;;
  status)
    daemon_states "" "${PIDFILES[@]}"
    exit 0 ;;
  start) ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
  say "must run as root (it installs packages and starts system daemons)"; exit 1
fi
t0=$(date +%s)

# ------------------------------------------------------------------------------------------ packages
PKGS="munge slurmctld slurmd slurm-client"
[ "$WITH_ACCOUNTING" = 1 ] && PKGS="$PKGS slurmdbd mariadb-server"
install_packages $PKGS

# ------------------------------------------------------------------------------------------ host name
# SlurmctldHost and NodeName are this host's short name, which must resolve
getent hosts "$NODE" >/dev/null || echo "127.0.0.1 $NODE" >> /etc/hosts

# ------------------------------------------------------------------------------------------ munge
start_munge

# ------------------------------------------------------------------------------------------ folders
install -d -o slurm -g slurm /var/spool/slurmctld "$LOG" "$RUN"
install -d /var/spool/slurmd "$CONF"
if [ "${SLURM_PURGE_STATE:-0}" = 1 ]; then
  stop_pidfile "$RUN/slurmd.pid"; stop_pidfile "$RUN/slurmctld.pid"
  rm -rf /var/spool/slurmctld/* /var/spool/slurmd/*
fi

# ------------------------------------------------------------------------------------------ slurm.conf
# hardware as slurmd sees it; RealMemory above the real amount drains the node, so keep a 20 % margin
read -r CPUS SOCKETS CORES THREADS MEM < <(slurmd -C | head -1 | tr ' ' '\n' | awk -F= '
  /^CPUs=/{c=$2} /^SocketsPerBoard=/{s=$2} /^CoresPerSocket=/{k=$2} /^ThreadsPerCore=/{t=$2} /^RealMemory=/{m=$2}
  END{print c, s, k, t, m}')
MEM=$(( MEM * 8 / 10 )); [ "$MEM" -ge 1 ] || MEM=1
if [ -n "$FAKE_CPUS" ]; then
  NODE_LINE="NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$FAKE_CPUS RealMemory=$MEM State=UNKNOWN"
  OVERRIDES="SlurmdParameters=config_overrides"
else
  NODE_LINE="NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS Sockets=$SOCKETS CoresPerSocket=$CORES ThreadsPerCore=$THREADS RealMemory=$MEM State=UNKNOWN"
  OVERRIDES="# SlurmdParameters: none (the node's real CPUs)"
fi
if [ "$WITH_ACCOUNTING" = 1 ]; then
  ACCOUNTING="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30"
else
  ACCOUNTING="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi

cat > "$CONF/slurm.conf.new" <<EOF
# written by scripts/slurm_cluster.sh
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmUser=slurm
AuthType=auth/munge
AuthInfo=cred_expire=10
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
$OVERRIDES
$ACCOUNTING
$(scheduling_conf)
$NODE_LINE
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
[ -z "${SLURM_EXTRA_CONF:-}" ] || printf '%s\n' "$SLURM_EXTRA_CONF" >> "$CONF/slurm.conf.new"
CONF_CHANGED=0
cmp -s "$CONF/slurm.conf.new" "$CONF/slurm.conf" || CONF_CHANGED=1
mv "$CONF/slurm.conf.new" "$CONF/slurm.conf"

# ------------------------------------------------------------------------------------------ accounting
if [ "$WITH_ACCOUNTING" = 1 ]; then
  install -d -o mysql -g mysql /run/mysqld
  if ! alive /run/mysqld/mysqld.pid; then
    /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 --pid-file=/run/mysqld/mysqld.pid \
      --innodb-buffer-pool-size=128M >>"$LOG/mariadb.log" 2>&1 &
  fi
  for _ in $(seq 1 100); do mariadb -e "select 1" >/dev/null 2>&1 && break; sleep 0.2; done
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  cat > "$CONF/slurmdbd.conf" <<EOF
# written by scripts/slurm_cluster.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
EOF
  chown slurm:slurm "$CONF/slurmdbd.conf"
  chmod 600 "$CONF/slurmdbd.conf"   # slurmdbd refuses any other mode
  alive "$RUN/slurmdbd.pid" || /usr/sbin/slurmdbd
  for _ in $(seq 1 100); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.2; done
  sacctmgr -n list cluster format=cluster | grep -qw "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
fi

# ------------------------------------------------------------------------------------------ slurmctld, slurmd
if [ "$CONF_CHANGED" = 1 ]; then  # `scontrol reconfigure` does not apply accounting, AuthInfo or node changes
  stop_pidfile "$RUN/slurmd.pid"
  stop_pidfile "$RUN/slurmctld.pid"
fi
alive "$RUN/slurmctld.pid" || /usr/sbin/slurmctld
alive "$RUN/slurmd.pid" || /usr/sbin/slurmd

state=""
for _ in $(seq 1 120); do
  # one line per partition of the node (SLURM_EXTRA_CONF's): the same state on each
  state=$(sinfo -h -N -n "$NODE" -o %t 2>/dev/null | awk 'NR == 1' || true)
  case "$state" in
    idle|mix|alloc) break ;;
    down*|drain*|drng*) scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
  esac
  sleep 0.5
done
case "$state" in
  idle|mix|alloc) ;;
  *) say "node $NODE is not up (state '$state')"; sinfo -R >&2 || true
     tail -n 20 "$LOG/slurmctld.log" "$LOG/slurmd.log" >&2 || true; exit 1 ;;
esac
say "cluster '$CLUSTER' ready (node $NODE $state) after $(( $(date +%s) - t0 )) s"
