#!/usr/bin/env bash
# Regenerates this study: 3 models trained on the UDHR's text (offline; tools/install_udhr.sh
# places it), each measured at 14 checkpoints, written here.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/install_udhr.sh
python tools/induction_heads.py --out=experiments/induction_heads --work=sweeps/induction_heads_2000 \
  | tee experiments/induction_heads/report.txt
rm -f experiments/induction_heads/*.svg
