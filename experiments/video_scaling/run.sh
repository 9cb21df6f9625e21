#!/usr/bin/env bash
# Regenerates this study (28 minutes on 2 cores): the video sweep (4 sizes x 2 seeds, each scored on its sampled
# clips and on continuations of held-out clips), one strip and GIF of samples per size
# (seed 0, one clip per class), the table, the emergence tests and the figure.
set -euo pipefail
cd "$(dirname "$0")/../.."
sweep=sweeps/video_cpu
out=experiments/video_scaling
scaling sweep run --config=configs/sweeps/video_cpu.py --dir=$sweep
mkdir -p $out/samples
for run in $sweep/runs/*/; do
  if [ "$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['seed'])" \
          "$run/config.json")" = 0 ]; then
    size=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['name'])" \
           "$run/config.json")
    scaling sample --workdir="$run" -n 1 --out="$out/samples/$size.png" > /dev/null
    scaling sample --workdir="$run" -n 1 --continue 4 \
      --out="$out/samples/$size-continued.png" > /dev/null
  fi
done
python tools/video_scaling.py $sweep --out=$out
# The page shows every size's GIF, v2's strip and v2's continuations; the rest would only
# add megabytes.
rm -f $out/*.svg $out/samples/video-{vt,v0,v1}.png $out/samples/video-{vt,v0,v1}-continued.* \
  $out/samples/video-v2-continued.gif
python -m scaling.analysis.study_page $out  # report.html from the README
