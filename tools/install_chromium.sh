#!/usr/bin/env bash
# Installs Debian's Chromium if it is missing; needs root and apt. Exits 0 without it where
# that is impossible: the headless-browser test of the HTML report then skips, saying why.
set -uo pipefail
if command -v chromium >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "chromium: not installed and cannot install here (needs root and apt-get)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
  echo "chromium: installed chromium"
else
  echo "chromium: apt-get could not install chromium" >&2
fi
exit 0
