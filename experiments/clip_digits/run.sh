#!/usr/bin/env bash
# Regenerates this study: runs the contrastive sweep, then copies its table, analysis and
# figures here.
set -euo pipefail
cd "$(dirname "$0")/../.."
scaling sweep run --config=configs/sweeps/clip_digits_cpu.py --dir=sweeps/clip_digits_cpu
out=experiments/clip_digits
cp sweeps/clip_digits_cpu/{results.csv,results.jsonl,analysis.json,sweep.json,status.json,report.html} "$out/"
mkdir -p "$out/figures"
cp sweeps/clip_digits_cpu/figures/*.png "$out/figures/"
