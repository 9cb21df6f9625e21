#!/usr/bin/env bash
# Usage: install_debian.sh COMMAND PACKAGE...: installs the Debian packages if COMMAND is
# missing; needs root and apt. Exits 0 without them where that is impossible: the tests that
# need them then skip, saying why.
set -uo pipefail
command=$1
shift
if command -v "$command" >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "$command: not installed and cannot install here (needs root and apt-get)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null; then
  echo "$command: installed $*"
else
  echo "$command: apt-get could not install $*" >&2
fi
exit 0
