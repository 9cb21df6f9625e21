"""IsoFLOP profiles on a laptop CPU: 3 compute budgets x 5 sizes on the task mixture.

`scaling sweep run --config=configs/sweeps/isoflop_cpu.py` trains each size of the main
ladder (s1 to s5, ~9k to ~123k parameters) at each budget C for C / (its FLOPs per step)
steps, so at a fixed budget a smaller model sees more tokens. `scaling plot` fits a
parabola of loss in log N per budget (Chinchilla Approach 2) and the Chinchilla law over
all points (Approach 3), with bootstrap intervals, and reports the compute-optimal N*(C)
and D*(C) exponents under `compute_optimal` in analysis.json. See experiments/isoflop_cpu.
"""

import ml_collections


def get_config(arg=None):
  del arg
  sweep = ml_collections.ConfigDict()
  sweep.name = "isoflop_cpu"
  sweep.base = "configs/lm/arithmetic.py:tasks=mix"
  sweep.sizes = ("s1", "s2", "s3", "s4", "s5")
  sweep.seeds = (0,)
  sweep.flop_budgets = (3e11, 1e12, 3e12)
  # The cosine schedule's length is each trial's own step count. 200k training examples
  # (the main job has 60k): the longest run, s1 at 3e12, sees each about 8 times; every
  # trial sees them in the same order.
  sweep.overrides = (
      "data.mixture=(('arithmetic', 0.7), ('letter_string', 0.2), ('word_analogy', 0.1))",
      "data.num_train=200000", "train.warmup_steps=50", "eval.every_steps=0",
      "checkpoint.every_steps=1000")
  sweep.headline = ("arithmetic", "+3d")
  return sweep
