#!/usr/bin/env bash
# Regenerates this study: runs the DiT sweep on digits, draws sample grids of the largest
# model (DDIM and DDPM at several step counts), and copies table, analysis and figures here.
set -euo pipefail
cd "$(dirname "$0")/../.."
sweep=sweeps/diffusion_digits_cpu
out=experiments/diffusion_scaling
scaling sweep run --config=configs/sweeps/diffusion_digits_cpu.py --dir=$sweep
cp $sweep/{results.csv,results.jsonl,analysis.json,sweep.json,status.json} "$out/"
mkdir -p "$out/figures" "$out/samples"
cp $sweep/figures/*.png "$out/figures/"
largest=$(ls -d $sweep/runs/digits-dit-d4-* | head -1)
smallest=$(ls -d $sweep/runs/digits-dit-d0-* | head -1)
for steps in 5 50; do
  scaling sample --workdir="$largest" -n 8 --steps $steps --guidance 2 \
      --out="$out/samples/d4-ddim$steps-guidance2.png"
done
scaling sample --workdir="$largest" -n 8 --sampler ddpm --steps 50 --guidance 2 \
    --out="$out/samples/d4-ddpm50-guidance2.png"
scaling sample --workdir="$largest" -n 8 --steps 50 --guidance 0 \
    --out="$out/samples/d4-ddim50-unconditional.png"
scaling sample --workdir="$smallest" -n 8 --steps 50 --guidance 2 \
    --out="$out/samples/d0-ddim50-guidance2.png"
