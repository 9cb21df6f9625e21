#!/usr/bin/env bash
# Regenerates this study: runs the main sweep, then copies its table, analysis and figures here.
set -euo pipefail
cd "$(dirname "$0")/../.."
scaling sweep run --config=configs/sweeps/arithmetic_cpu.py --dir=sweeps/arithmetic_cpu
out=experiments/arithmetic_emergence
cp sweeps/arithmetic_cpu/{results.csv,results.jsonl,analysis.json,sweep.json,status.json} "$out/"
mkdir -p "$out/figures"
cp sweeps/arithmetic_cpu/figures/*.png "$out/figures/"
