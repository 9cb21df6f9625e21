"""One benchmark item, and how many draws a held-out subset may spend: shared by the
suites (`scaling.evals.suites`) and the suites built on them (`scaling.evals.commitment`)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class EvalItem:
  prompt: str
  answer: str
  task: str
  subset: str
  choices: tuple[str, ...] | None = None
  correct: int | None = None


def max_draws(n: int, eval_fraction: float) -> int:
  """Draws to spend on a subset: about three times what n held-out items take on average,
  so a large space yields n and a small one stops early with what it has."""
  return int(3 * n / eval_fraction) + 1000
