#!/usr/bin/env bash
# Regenerates this study: 13 models on repeated random strings and 6 on the Latin-script UDHR
# (offline; tools/install_udhr.sh places it), each measured at every kept checkpoint.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/install_udhr.sh
python tools/induction_heads.py --out=experiments/induction_heads --work=sweeps/induction_heads \
  | tee experiments/induction_heads/report.txt
rm -f experiments/induction_heads/*.svg
python -m scaling.analysis.study_page experiments/induction_heads  # report.html from the README
