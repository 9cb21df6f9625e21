#!/usr/bin/env bash
# Regenerates this study: the code sweep, then the temperature study of its s5 run, then
# copies the table, analysis and figures here.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=sweeps/code_cpu
scaling sweep run --config=configs/sweeps/code_cpu.py --dir=$dir
s5=$(python -c "import json; s = json.load(open('$dir/status.json')); print(next(k for k, v in s.items() if v['size'] == 's5'))")
python tools/code_temperature.py --workdir=$dir/runs/$s5 --out=$dir/temperature
out=experiments/code_cpu
cp $dir/{results.csv,results.jsonl,analysis.json,sweep.json,status.json,temperature.json,temperature.png} "$out/"
mkdir -p "$out/figures"
cp $dir/figures/*.png "$out/figures/"
