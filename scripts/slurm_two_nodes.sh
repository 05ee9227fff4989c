#!/usr/bin/env bash
# A second, two-node Slurm cluster on localhost beside scripts/slurm_cluster.sh's, for the test of a job across
# nodes (tests/launch/test_slurm_two_nodes.py): nodes n1 and n2 are two slurmd on this host (`slurmd -N`), one CPU
# each, so a job of two nodes runs one task on each. Their names do not resolve: rank 0's address is found as
# study/train/distributed.py's master_address finds it on such a cluster (NodeAddr, through scontrol).
#
#   scripts/slurm_two_nodes.sh        stop a previous instance of this cluster (its jobs cancelled), start it anew
#                                     (saved state wiped: no job of an earlier run comes back), wait until both
#                                     nodes are idle (a few seconds), print its slurm.conf's path on stdout:
#                                     give it to every Slurm command as SLURM_CONF; where it fails, the
#                                     daemons it started are stopped again
#   scripts/slurm_two_nodes.sh stop   cancel its jobs, stop its daemons (by pid file)
#   scripts/slurm_two_nodes.sh status say which of its daemons run, and the nodes' states
#
# Environment:
#   SLURM_TWO_NODES_DIR=/var/tmp/study-slurm-two-nodes   everything it writes: config, state, spool, pid files, logs
#   SLURM_TWO_NODES_PORT=16817                           slurmctld's port; the slurmd listen on the next ones (+1..+3)
#
# Leaves /etc/slurm and the single-node cluster's daemons alone; shares the system's munged (/run/munge, started as
# slurm_cluster.sh starts it where it does not run) and its packages (installed where missing). No accounting: sacct
# fails on it, and study reads the jobs' states from squeue.
set -euo pipefail

# alive, stop_pidfile, install_packages, start_munge, scheduling_conf, daemon_states
source "$(dirname "${BASH_SOURCE[0]}")/slurm_cluster.sh"
say() { echo "[slurm_two_nodes] $*" >&2; }

DIR=${SLURM_TWO_NODES_DIR:-/var/tmp/study-slurm-two-nodes}
PORT=${SLURM_TWO_NODES_PORT:-16817}
HOST=$(hostname -s)
NODES=(n1 n2)
CONF_FILE=$DIR/slurm.conf
export SLURM_CONF=$CONF_FILE  # every Slurm command below talks to this cluster, never to /etc/slurm's
# pid files named as their daemons (alive() compares the name with the process's): one folder per slurmd
PIDFILES=("$DIR/n2/slurmd.pid" "$DIR/n1/slurmd.pid" "$DIR/slurmctld.pid")  # in the order they are stopped

stop() {
  if alive "$DIR/slurmctld.pid"; then  # its jobs' steps would outlive their slurmd
    local ids
    ids=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ') || true
    if [ -n "${ids// /}" ]; then
      say "cancelling its jobs $ids"
      # shellcheck disable=SC2086
      scancel $ids 2>/dev/null || true
      for _ in $(seq 1 60); do [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.5; done
    fi
  fi
  for f in "${PIDFILES[@]}"; do stop_pidfile "$f"; done
}

case "${1:-start}" in
  stop)
    stop
    exit 0 ;;
  status)
    daemon_states "$DIR" "${PIDFILES[@]}"
    exit 0 ;;
  start) ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
  say "must run as root (it starts Slurm daemons, and munged where it does not run)"; exit 1
fi
t0=$(date +%s)

install_packages munge slurmctld slurmd slurm-client
start_munge

# ------------------------------------------------------------------------------------------ a fresh instance
stop
# from here, a start that fails (nodes not up, a daemon that does not start: set -e) stops what it started, so that
# no daemon is left holding the ports and pid files; `ready` once both nodes are idle
ready=0
trap '[ "$ready" = 1 ] || { say "start failed: stopping its daemons"; stop; }' EXIT
rm -rf "$DIR/state" "$DIR/spool"
mkdir -p "$DIR/state" "$DIR/log" "${NODES[@]/#/$DIR/}" "${NODES[@]/#/$DIR/spool/}"

# ------------------------------------------------------------------------------------------ slurm.conf
# as slurm_cluster.sh's, less accounting; SlurmctldHost's name is this host's (slurmctld checks it), reached at
# 127.0.0.1 (this host's name need not resolve); %n: each slurmd's own spool, pid file and log
{
  cat <<EOF
# written by scripts/slurm_two_nodes.sh
ClusterName=twonodes
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/%n/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
$(scheduling_conf)
EOF
  k=2
  for n in "${NODES[@]}"; do
    echo "NodeName=$n NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$((PORT + k)) CPUs=1 RealMemory=2000 State=UNKNOWN"
    k=$((k + 1))
  done
  echo "PartitionName=debug Nodes=$(IFS=,; echo "${NODES[*]}") Default=YES MaxTime=INFINITE State=UP"
} > "$CONF_FILE"

# ------------------------------------------------------------------------------------------ slurmctld, slurmd
/usr/sbin/slurmctld -f "$CONF_FILE"
for n in "${NODES[@]}"; do /usr/sbin/slurmd -f "$CONF_FILE" -N "$n"; done

states=""
for _ in $(seq 1 120); do
  states=$(sinfo -h -N -o "%N %t" 2>/dev/null | sort | tr '\n' ' ' || true)
  [ "$states" = "n1 idle n2 idle " ] && break
  for n in "${NODES[@]}"; do
    case "$states" in
      *"$n down"*|*"$n drain"*|*"$n drng"*) scontrol update nodename="$n" state=resume 2>/dev/null || true ;;
    esac
  done
  sleep 0.5
done
if [ "$states" != "n1 idle n2 idle " ]; then
  say "nodes not up (sinfo: '$states')"; sinfo -R >&2 || true
  tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd-n1.log" "$DIR/log/slurmd-n2.log" >&2 2>/dev/null || true
  exit 1
fi
ready=1
say "cluster 'twonodes' ready (nodes n1, n2 idle) after $(( $(date +%s) - t0 )) s: SLURM_CONF=$CONF_FILE"
echo "$CONF_FILE"
