"""An audio language-model ladder on spoken counting, on a laptop CPU.

Train the codec first (`scaling train --config=configs/audio/codec.py
--workdir=runs/audio_codec`, about 8 minutes on 2 cores), then `scaling sweep run
--config=configs/sweeps/audio_cpu.py` trains four sizes of the audio LM
(`configs/audio/counting.py` a0-a3) with two seeds each on the same codec tokens in the
same order, and scores every run on spoken counting (suite `counting`: exact match judged
by the codec's word recogniser, and the log-probability of the true continuation).
`tools/audio_counting.py` reads the runs into `experiments/audio_counting/`.
"""

import ml_collections


def get_config(arg=None):
  del arg
  sweep = ml_collections.ConfigDict()
  sweep.name = "audio_cpu"
  sweep.base = "configs/audio/counting.py"
  # 1,000 steps of 32 utterances (about 8 passes over the 4,096) keeps the ladder near 40
  # minutes on 2 cores; a4 would take as long as the other four together.
  sweep.sizes = ("a0", "a1", "a2", "a3")
  sweep.seeds = (0, 1)
  sweep.overrides = ("data.codec=runs/audio_codec", "train.steps=1000", "eval.every_steps=0",
                     "checkpoint.every_steps=500")
  sweep.eval = ml_collections.ConfigDict({"suites": "counting", "n": 200})
  sweep.headline = ("counting", "model")
  return sweep
