#!/usr/bin/env bash
# Installs Debian's SLURM (slurm-wlm) and munge if they are missing; needs root and apt.
# Exits 0 without them where that is impossible: the SLURM tests then skip, saying why.
set -uo pipefail
if command -v slurmctld >/dev/null && command -v munged >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "slurm: not installed and cannot install here (needs root and apt-get)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null; then
  echo "slurm: installed slurm-wlm and munge"
else
  echo "slurm: apt-get could not install slurm-wlm and munge" >&2
fi
exit 0
