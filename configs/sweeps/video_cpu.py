"""A video DiT ladder on moving digits, on a laptop CPU: what size buys in space and time.

`scaling sweep run --config=configs/sweeps/video_cpu.py` trains four sizes of the video
DiT (`configs/video/moving_digits.py` vt-v2) with two seeds each on the same clips in the
same order, then samples and scores every run (suites `clips` and `continuation`: per-frame
quality, motion, identity across frames, the clip-level distance, and continuations of
held-out clips). `tools/video_scaling.py` reads the runs and runs the emergence test on the
per-frame and the temporal metrics (`experiments/video_scaling/`).
"""

import ml_collections


def get_config(arg=None):
  del arg
  sweep = ml_collections.ConfigDict()
  sweep.name = "video_cpu"
  sweep.base = "configs/video/moving_digits.py"
  # v3 (2.6M parameters) costs about as much a step as the other four together (0.79 s
  # on 2 cores at 32x32): the CPU ladder stops at v2.
  sweep.sizes = ("vt", "v0", "v1", "v2")
  sweep.seeds = (0, 1)
  # 3,000 steps x 32 clips (about 23 passes over the 4,096 training clips) keeps the
  # ladder within 45 minutes on 2 cores; the family's default trains v1 longer.
  sweep.overrides = ("train.steps=3000", "eval.every_steps=0", "checkpoint.every_steps=1000")
  sweep.eval = ml_collections.ConfigDict({"suites": "clips,continuation", "n": 10})
  sweep.headline = ("clips", "ddim50/g4")
  return sweep
