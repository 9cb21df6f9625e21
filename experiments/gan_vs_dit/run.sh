#!/usr/bin/env bash
# Regenerates this study: both sweeps of configs/sweeps/gan_vs_dit_cpu.py (DiT, then GAN),
# the side-by-side table, and sample grids of seed 0 of every size and learning rate;
# copies tables, analyses and figures here.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=experiments/gan_vs_dit
for family in dit gan; do
  sweep=sweeps/gan_vs_dit_cpu_$family
  scaling sweep run --config=configs/sweeps/gan_vs_dit_cpu.py:$family --dir=$sweep
  mkdir -p "$out/$family/figures"
  cp $sweep/{results.csv,results.jsonl,analysis.json,sweep.json,status.json} "$out/$family/"
  cp $sweep/figures/*.png "$out/$family/figures/"
done
python tools/compare_sweeps.py DiT=sweeps/gan_vs_dit_cpu_dit GAN=sweeps/gan_vs_dit_cpu_gan \
    > "$out/table.md"
mkdir -p "$out/samples"
# seed 0 of every size at each learning rate: 8 images of each class, one row per class
python - "$out/samples" <<'PY' | while read -r workdir png; do scaling sample --workdir="$workdir" -n 8 --out="$png"; done
import json, sys
for family in ("dit", "gan"):
  sweep = f"sweeps/gan_vs_dit_cpu_{family}"
  with open(f"{sweep}/results.jsonl") as f:
    for row in map(json.loads, f):
      if row["final"] and row["seed"] == 0:
        print(f"{sweep}/runs/{row['trial']} "
              f"{sys.argv[1]}/{row['size']}-lr{row['learning_rate']:g}-seed0.png")
PY
cat "$out/table.md"
