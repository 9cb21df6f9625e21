#!/usr/bin/env bash
# Installs Debian's Chromium if it is missing (for the headless-browser test of the HTML
# report); see install_debian.sh.
exec bash "$(dirname "$0")/install_debian.sh" chromium chromium
