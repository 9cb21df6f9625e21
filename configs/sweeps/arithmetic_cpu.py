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
  sweep.sizes = ("s0", "s1", "s2", "s3", "s5")  # ~6k to ~123k parameters
  sweep.seeds = (0, 1)
  # 1200 steps x 128 sequences: every size sees the same 154k examples (about 2.5 epochs
  # of the 60k-example training set), 70% of them arithmetic.
  sweep.overrides = (
      "data.mixture=(('arithmetic', 0.7), ('letter_string', 0.2), ('word_analogy', 0.1))",
      "data.num_train=60000", "train.steps=1200", "eval.every_steps=0",
      "checkpoint.every_steps=400")
  sweep.size_overrides = {}
  sweep.tokens_per_param = 0
  sweep.eval = ml_collections.ConfigDict({"suites": "arithmetic,analogy", "n": 100})
  sweep.headline = ("arithmetic", "+3d")
  return sweep
