#!/usr/bin/env bash
# Regenerates this study (about 50 minutes on 2 cores): the codec (8 min), its quality
# table and recogniser, the audio LM sweep (4 sizes x 2 seeds, each scored on spoken
# counting), one decoded sample of the codec and one continuation per size (seed 0), the
# table, the emergence test and the figure, then report.html.
set -euo pipefail
cd "$(dirname "$0")/../.."
codec=runs/audio_codec
sweep=sweeps/audio_cpu
out=experiments/audio_counting
scaling train --config=configs/audio/codec.py --workdir=$codec
scaling eval --workdir=$codec --suite quality,recogniser > $out/codec_quality.txt
cp $codec/eval.json $out/codec_eval.json
scaling sample --workdir=$codec -n 1 --out=$out/samples/codec > /dev/null
scaling sweep run --config=configs/sweeps/audio_cpu.py --dir=$sweep
for run in $sweep/runs/*/; do
  if [ "$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['seed'])" \
          "$run/config.json")" = 0 ]; then
    size=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['name'])" \
           "$run/config.json")
    scaling sample --workdir="$run" -n 1 --temperature 0.8 --out="$out/samples/$size" > /dev/null
  fi
done
python tools/audio_counting.py $sweep --out=$out
python -m scaling.analysis.study_page $out  # report.html from the README
