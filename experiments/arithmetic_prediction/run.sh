#!/usr/bin/env bash
# Regenerates this study: 8 sizes x 4 seeds with checkpoint evals, then copies its table,
# analysis, report and figures here (about 40 minutes on 2 CPU cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
scaling sweep run --config=configs/sweeps/arithmetic_prediction_cpu.py --dir=sweeps/arithmetic_prediction_cpu
out=experiments/arithmetic_prediction
cp sweeps/arithmetic_prediction_cpu/{results.csv,results.jsonl,analysis.json,sweep.json,status.json,report.html} "$out/"
mkdir -p "$out/figures"
cp sweeps/arithmetic_prediction_cpu/figures/*.png "$out/figures/"
