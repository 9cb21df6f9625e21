#!/usr/bin/env bash
# Regenerates this study: the same learning-rate x width grid under SP and under muP, then
# copies both tables, analyses and figures here.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=experiments/mup_transfer
for p in sp mup; do
  scaling sweep run --config=configs/sweeps/mup_transfer_cpu.py:$p --dir=sweeps/mup_transfer_cpu_$p
  mkdir -p "$out/$p/figures"
  cp sweeps/mup_transfer_cpu_$p/{results.csv,results.jsonl,analysis.json,sweep.json,trials.json,status.json} "$out/$p/"
  cp sweeps/mup_transfer_cpu_$p/figures/*.png "$out/$p/figures/"
done
