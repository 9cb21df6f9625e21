"""A size ladder on programs from input/output examples (70%) beside addition (30%), on a
laptop CPU, scored by running what the models write.

`scaling sweep run --config=configs/sweeps/code_cpu.py` trains every size, evaluates the
code suite (greedy pass@1 as `exact_match`, pass@1/5/10 and execution-filtered pass@1 from
20 samples at temperature 0.8, the reference program's log-probability), fits scaling laws
and draws capability against size for `program`. Every model sees the same examples in the
same order.

The measured run took about 22 minutes on 2 CPU cores, nearly all of it training (at
seq_len 65 a step of s2-s5 takes 85-130 ms); see experiments/code_cpu.
"""

import ml_collections


def get_config(arg=None):
  del arg
  sweep = ml_collections.ConfigDict()
  sweep.name = "code_cpu"
  sweep.base = "configs/lm/arithmetic.py:tasks=code"
  sweep.sizes = ("s1", "s2", "s3", "s4", "s5")  # ~9k to ~123k parameters
  sweep.seeds = (0,)
  # 3000 steps x 128 sequences: every size sees the same 384k examples (about 4.8 epochs of
  # the 80k-example training set), 70% of them programs.
  sweep.overrides = (
      "data.num_train=80000", "data.num_eval=500", "train.steps=3000",
      "eval.every_steps=0", "checkpoint.every_steps=1000")
  sweep.size_overrides = {}
  sweep.tokens_per_param = 0
  sweep.eval = ml_collections.ConfigDict({
      "suites": "code", "n": 100, "samples": 20, "temperature": 0.8, "top_p": 1.0})
  sweep.headline = ("program", "all")
  return sweep
