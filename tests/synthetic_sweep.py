"""Synthetic sweeps for the analysis tests: results-table rows, one per (trial, checkpoint),
generated from known laws so that fits and verdicts can be checked against the truth."""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
from scipy import special

from scaling.evals import metrics

SIZES = 1e6 * 2.0 ** np.arange(8)  # 1M .. 128M parameters
FRACTIONS = (0.125, 0.25, 0.5, 1.0)  # checkpoints, as fractions of the training tokens
TOKENS_PER_PARAM = 20


def heldout(n, f):
  """Pre-training loss of size n after a fraction f of its tokens."""
  return 0.9 + 40 * n ** -0.25 + 0.6 * (f ** -0.5 - 1)


def ladder_task_loss(n, f, h):
  """Task loss: a power law of N at the end of training, higher at earlier checkpoints."""
  return 0.5 + 300 * n ** -0.35 + 0.8 * (f ** -0.5 - 1)


def sigmoid_of(x0: float, k: float, floor: float = 0.0) -> Callable:
  return lambda x: floor + (1 - floor) * special.expit(k * (np.asarray(x) - x0))


def sweep(tasks: Mapping[str, tuple[Callable, Callable]], *, sizes=SIZES, seeds=(0, 1, 2),
          fractions=FRACTIONS, n_items: int = 200, seed: int = 0, loss_noise: float = 0.01,
          tokens_per_param: float = TOKENS_PER_PARAM, tag: str = "") -> list[dict]:
  """Rows for every size, seed and checkpoint. `tasks` maps 'task/subset' to (task loss
  (n, f, heldout) -> nats, accuracy (task loss, heldout, n) -> probability); exact match is
  drawn from n_items Bernoulli items and scored with metrics.summarize, as evaluation does."""
  rng = np.random.default_rng(seed)
  rows = []
  for i, n in enumerate(sizes):
    for s in seeds:
      trial_h = np.exp(0.003 * rng.standard_normal())
      trial_tl = {name: np.exp(loss_noise * rng.standard_normal()) for name in tasks}
      for j, f in enumerate(fractions):
        h = float(heldout(n, f) * trial_h)
        row = {"trial": f"s{i}{tag}-seed{s}", "kind": "lm", "size": f"s{i}", "seed": s,
               "status": "completed", "params": int(n), "tokens": int(f * tokens_per_param * n),
               "step": int(round(f * 1000)), "final": j == len(fractions) - 1,
               "final_eval_loss": h, "training_flops": 6.0 * n * f * tokens_per_param * n,
               "metrics": {}, "chance": {}}
        for name, (task_loss, accuracy) in tasks.items():
          tl = float(task_loss(n, f, h) * trial_tl[name])
          items = (rng.random(n_items) < accuracy(tl, h, n)).astype(float)
          em = metrics.summarize(items, n_resamples=300, seed=int(rng.integers(1 << 30)))
          row["metrics"][f"{name}/exact_match"] = [em["mean"], em["ci_low"], em["ci_high"]]
          row["metrics"][f"{name}/answer_logprob"] = [-tl, -tl - 0.02, -tl + 0.02]
          row["chance"][f"{name}/digit_accuracy"] = 0.1
        rows.append(row)
  return rows
