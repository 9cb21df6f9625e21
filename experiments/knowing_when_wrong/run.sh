#!/usr/bin/env bash
# Regenerates this study: the main job's sweep (5 sizes x 2 seeds), each run scored on
# 200 held-out sums per suite (arithmetic: calibration; commitment), collected here.
set -euo pipefail
cd "$(dirname "$0")/../.."
sweep=sweeps/knowing_when_wrong
scaling sweep run --config=configs/sweeps/arithmetic_cpu.py --dir=$sweep
for run in $sweep/runs/*/; do
  scaling eval --workdir="$run" --suite arithmetic,commitment -n 200 > /dev/null
done
python tools/knowing_when_wrong.py $sweep --out=experiments/knowing_when_wrong
rm -f experiments/knowing_when_wrong/*.svg
python -m scaling.analysis.study_page experiments/knowing_when_wrong  # report.html from the README
