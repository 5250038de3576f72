#!/usr/bin/env bash
# A throwaway one-node SLURM cluster on this machine, for testing `tessera slurm` scripts against
# the real sbatch. Needs root and Debian's slurm-wlm and munge packages:
#   apt-get install -y slurm-wlm munge
#
#   Tests/Interop/slurm_single_node.sh start DIR   # prints: export SLURM_CONF=DIR/slurm.conf
#   Tests/Interop/slurm_single_node.sh stop DIR    # stops the daemons this script started
#
# DIR holds the configuration, the controller's state, the logs and the pid files; `start` wipes
# its state, so job ids begin at 1. slurmctld and slurmd run as root with no cgroups
# (proctrack/linuxproc, task/none: works in containers), one node with this machine's CPUs and
# memory, one partition "debug". munged is reused when one already answers, else started.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 64; }
[[ $# -eq 2 ]] || usage
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
export SLURM_CONF=$dir/slurm.conf

start() {
  [[ $(id -u) -eq 0 ]] || { echo "$0: needs root (slurmd runs jobs as root here)" >&2; exit 77; }
  for daemon in slurmctld slurmd munged; do
    command -v "$daemon" >/dev/null || [[ -x /usr/sbin/$daemon ]] \
      || { echo "$0: $daemon not found; apt-get install -y slurm-wlm munge" >&2; exit 77; }
  done
  export PATH=$PATH:/usr/sbin
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    install -d -o munge -g munge -m 0755 /run/munge
    runuser -u munge -- munged
    touch "$dir/munged.ours"
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  rm -rf "$dir/state" "$dir/spool"
  mkdir -p "$dir/state" "$dir/spool"
  local host cpus memory
  host=$(hostname -s)
  cpus=$(nproc)
  memory=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  cat >"$SLURM_CONF" <<EOF
ClusterName=tessera-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 100); do
    if [[ $(sinfo -h -o %T 2>/dev/null) == idle ]]; then
      echo "export SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    sleep 0.2
  done
  echo "$0: the node did not come up; see $dir/slurmctld.log and $dir/slurmd.log" >&2
  stop
  exit 1
}

stop() {
  export PATH=$PATH:/usr/sbin
  local sid=
  [[ -f $dir/slurmd.pid ]] && sid=$(cat "$dir/slurmd.pid")
  if [[ -f $SLURM_CONF ]] && scontrol ping >/dev/null 2>&1; then
    # Cancel what is left and let the job steps end first: a slurmstepd outlives a slurmd that
    # stops under it, retrying to report.
    local jobs
    jobs=$(squeue --noheader --format=%A 2>/dev/null | sort -u | tr '\n' ' ')
    [[ -n ${jobs// /} ]] && { scancel $jobs 2>/dev/null || true; }
    for _ in $(seq 100); do
      [[ -z $(squeue --noheader 2>/dev/null) ]] && ! compgen -G "$dir/spool/$(hostname -s)_[0-9]*.[0-9]*" >/dev/null && break
      sleep 0.1
    done
    scontrol shutdown >/dev/null 2>&1 || true
  fi
  for name in slurmctld slurmd; do
    local pidfile=$dir/$name.pid
    [[ -f $pidfile ]] || continue
    local pid
    pid=$(cat "$pidfile")
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
  # Job steps left over share slurmd's session: end them by id.
  if [[ -n $sid ]]; then
    for pid in $(ps -o pid= -s "$sid" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  fi
  if [[ -f $dir/munged.ours ]]; then
    local pid
    pid=$(cat /run/munge/munged.pid 2>/dev/null || true)
    [[ -n $pid ]] && { kill "$pid" 2>/dev/null || true; }
    rm -f "$dir/munged.ours"
  fi
}

case $action in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
