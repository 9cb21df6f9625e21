"""The main job: a size ladder on the arithmetic + analogy mixture, on a laptop CPU.

`scaling sweep run --config=configs/sweeps/arithmetic_cpu.py` trains every size and seed,
evaluates them, fits scaling laws, draws the figures and prints where they are. Every
model sees the same examples in the same order (the data seed is fixed); seeds vary only
the initialisation.
"""

import ml_collections


def get_config(arg=None):
  del arg
  sweep = ml_collections.ConfigDict()
  sweep.name = "arithmetic_cpu"
  sweep.base = "configs/lm/arithmetic.py:tasks=mix"
  sweep.sizes = ("s0", "s1", "s2", "s3", "s4")  # ~6k to ~74k parameters
  sweep.seeds = (0, 1)
  # 1500 steps x 128 sequences: every size sees the same 192k examples (about two epochs
  # of the 100k-example training set).
  sweep.overrides = ("train.steps=1500", "data.num_train=100000", "eval.every_steps=0",
                     "checkpoint.every_steps=500")
  sweep.size_overrides = {}
  sweep.tokens_per_param = 0
  sweep.eval = ml_collections.ConfigDict({"suites": "arithmetic,analogy", "n": 100})
  sweep.headline = ("arithmetic", "+3d")
  return sweep
