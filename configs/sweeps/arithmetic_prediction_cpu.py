"""The deeper arithmetic study: 8 sizes through the transition x 4 seeds, scored over training.

`scaling sweep run --config=configs/sweeps/arithmetic_prediction_cpu.py` trains the main
job's mixture at eight sizes from ~9k to ~123k parameters (half steps s2.5, s3.5, s4.5
between the main ladder's sizes), four initialisation seeds each, and scores arithmetic
and analogies at steps 400, 800 and 1200. `scaling plot` then fits the loss law and a
sigmoid of exact match against the answer's loss on the four smaller sizes
(`predict_from`), predicts the four larger ones with bootstrap intervals, and finds each
size's loss threshold. About 40 minutes on 2 CPU cores; see experiments/arithmetic_prediction.
"""

import ml_collections


def get_config(arg=None):
  del arg
  sweep = ml_collections.ConfigDict()
  sweep.name = "arithmetic_prediction_cpu"
  sweep.base = "configs/lm/arithmetic.py:tasks=mix"
  sweep.sizes = ("s1", "s2", "s2.5", "s3", "s3.5", "s4", "s4.5", "s5")
  sweep.seeds = (0, 1, 2, 3)
  # The main job's data and budget: 1200 steps x 128 sequences, the same examples in the
  # same order for every size and seed.
  sweep.overrides = (
      "data.mixture=(('arithmetic', 0.7), ('letter_string', 0.2), ('word_analogy', 0.1))",
      "data.num_train=60000", "train.steps=1200", "eval.every_steps=0",
      "checkpoint.every_steps=400")
  sweep.eval = ml_collections.ConfigDict(
      {"suites": "arithmetic,analogy", "n": 100, "checkpoint_every": 400})
  sweep.headline = ("arithmetic", "+3d")
  # The smaller half (s1, s2, s2.5, s3: at most ~37k parameters) predicts the larger half.
  sweep.predict_from = 40_000
  return sweep
