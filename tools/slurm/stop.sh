#!/usr/bin/env bash
# Stops the single-node cluster that tools/slurm/start.sh started (and only that one).
set -uo pipefail
CONF=${SLURM_CONF:-/etc/slurm/slurm.conf}
grep -qF "# Written by scaling's tools/slurm/start.sh" "$CONF" 2>/dev/null || exit 0
scancel --user="$(id -un)" >/dev/null 2>&1 || true
scontrol shutdown >/dev/null 2>&1 || true
for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
  pid=$(cat "$pidfile" 2>/dev/null) || continue
  kill "$pid" 2>/dev/null || true
done
for _ in $(seq 40); do
  alive=0
  for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
    pid=$(cat "$pidfile" 2>/dev/null) && kill -0 "$pid" 2>/dev/null && alive=1
  done
  [ $alive = 0 ] && { echo "slurm: stopped"; exit 0; }
  sleep 0.25
done
echo "slurm: still stopping" >&2
