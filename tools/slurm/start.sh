#!/usr/bin/env bash
# Starts a single-node SLURM cluster on this machine (munged, slurmctld, slurmd as root) for
# the tests and for trying the slurm executor. Idempotent: a running cluster is left as is.
# Needs root and Debian's slurm-wlm and munge (tools/slurm/install.sh). Stop: tools/slurm/stop.sh.
set -euo pipefail

CONF=${SLURM_CONF:-/etc/slurm/slurm.conf}
MARK="# Written by scaling's tools/slurm/start.sh"
NODE=$(hostname -s)

ready() { sinfo -h -N -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; }
# A live (not zombie) process of this name.
running() { ps -C "$1" -o stat= | grep -qv '^Z'; }

if ready; then
  echo "slurm: already running ($(sinfo -h -o '%P %D %T' | head -1))"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "slurm: cannot start: needs root" >&2; exit 2; }
for tool in munged slurmctld slurmd sinfo; do
  command -v "$tool" >/dev/null || { echo "slurm: cannot start: $tool not installed (tools/slurm/install.sh)" >&2; exit 2; }
done

# Never overwrite a real cluster's configuration, only our own.
if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
  echo "slurm: $CONF exists and is not ours; not touching it" >&2
  exit 2
fi
mkdir -p "$(dirname "$CONF")" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
# CPUs as on this host; memory is not tracked (CR_Core), so jobs share it.
CPUS=$(nproc)
cat > "$CONF" <<CONF_END
$MARK: a one-node test cluster.
ClusterName=scaling
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# No cgroups in containers: track processes by parentage, bind no tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
# A requeued job becomes eligible by time alone (cred_expire below), which only the
# periodic passes notice (every 60 and 30 s by default): look every second.
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# A preempted job has this long between SIGTERM and SIGKILL to save its checkpoint.
KillWait=60
# Also how long a requeued job waits before it may start again (default 120 s).
AuthInfo=cred_expire=15
NodeName=$NODE CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF_END

if ! munge -n </dev/null >/dev/null 2>&1; then
  if [ ! -s /etc/munge/munge.key ]; then  # the package makes one; a bare image may not
    mkdir -p /etc/munge && dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
    chmod 400 /etc/munge/munge.key
  fi
  munged --force </dev/null >/dev/null 2>&1
fi
running slurmctld || slurmctld </dev/null >/dev/null 2>&1
running slurmd || slurmd </dev/null >/dev/null 2>&1

for _ in $(seq 60); do
  if ready; then
    echo "slurm: started ($(sinfo -h -o '%P %D %T' | head -1))"
    exit 0
  fi
  # A node left down or drained by an earlier, unclean stop is ours to bring back.
  if sinfo -h -N -o %T 2>/dev/null | grep -qE '^(down|drain)'; then
    scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
  fi
  sleep 0.5
done
echo "slurm: cannot start: node not ready after 30 s; see /var/log/slurm/*.log" >&2
exit 1
