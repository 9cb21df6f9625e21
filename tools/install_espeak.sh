#!/usr/bin/env bash
# Installs Debian's espeak-ng if it is missing: it speaks the spoken data offline
# (scaling.data.speech); see install_debian.sh.
exec bash "$(dirname "$0")/install_debian.sh" espeak-ng espeak-ng
