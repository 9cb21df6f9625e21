#!/usr/bin/env bash
# Regenerates this study: 3 compute budgets x 5 sizes, then copies its table, analysis
# and figures here.
set -euo pipefail
cd "$(dirname "$0")/../.."
scaling sweep run --config=configs/sweeps/isoflop_cpu.py --dir=sweeps/isoflop_cpu
out=experiments/isoflop_cpu
cp sweeps/isoflop_cpu/{results.csv,results.jsonl,analysis.json,sweep.json,status.json} "$out/"
mkdir -p "$out/figures"
cp sweeps/isoflop_cpu/figures/*.png "$out/figures/"
