"""Commitment: does a model carry on from a wrong first answer digit as if it were right?

For addition with reversed answers, the first answer digit is the units digit of a + b, and
it decides the carry into the tens. Suppose the first digit were forced to a wrong d. If d
were right with a's units digit kept, b's units digit would be b0' = (d - a0) mod 10, and
the carry would be c' = [a0 + b0' >= 10] = [d < a0]. Keeping b0 instead gives c' = [d < b0].
Only items where d flips the carry under both readings are kept. There the rest of the
answer tells two behaviours apart:

- `commitment_consistent`: the rest is the reversed digits of a//10 + b//10 + c'. The model
  carries on with the arithmetic its wrong digit implies (it commits to the error).
- `commitment_recovered`: the rest is the reversed digits of a//10 + b//10 + c, the true
  rest. The model works from the operands and ignores its wrong digit.

Both tasks hold the same prompts (the question and the forced digit), each with its own
answer, and are scored like every text suite. Their exact match is the share of rests of
each kind; the rest is neither. Set beside `arithmetic` (no forced digit) per size, they
say whether larger models commit more, or recover more, once they are wrong.
"""

from __future__ import annotations

import numpy as np

from scaling.data.tasks import arithmetic
from scaling.evals.items import EvalItem, max_draws

TASKS = ("commitment_consistent", "commitment_recovered")


def forced_digit(a: int, b: int, rng: np.random.Generator) -> int | None:
  """A wrong units digit that flips the carry whichever operand is kept, or None."""
  a0, b0 = a % 10, b % 10
  carry = a0 + b0 >= 10
  # c' = [d < a0] and [d < b0] must both differ from the carry.
  choices = range(max(a0, b0), 10) if carry else range(0, min(a0, b0))
  choices = [d for d in choices if d != (a0 + b0) % 10]
  return int(rng.choice(choices)) if choices else None


def rest(high: int) -> str:
  """The answer's digits after the units digit, reversed as the answer writes them
  (empty when the sum has one digit)."""
  return str(high)[::-1] if high else ""


def items(data_cfg, n_per_subset: int, seed: int = 0) -> list[EvalItem]:
  """Up to n held-out additions per digit count with a carry-flipping forced digit; two
  items (consistent, recovered) per problem. Needs reversed answers."""
  if not data_cfg.reverse_answer or "+" not in data_cfg.ops:
    return []
  rng = np.random.default_rng([seed, 7])
  out = []
  for digits in range(max(data_cfg.min_digits, 2), data_cfg.max_digits + 1):
    kept = 0
    for p in arithmetic.generate("eval", 3 * n_per_subset, seed=seed, ops=("+",),
                                 min_digits=digits, max_digits=digits,
                                 eval_fraction=data_cfg.eval_fraction,
                                 max_tries=max_draws(3 * n_per_subset,
                                                     data_cfg.eval_fraction)):
      d = forced_digit(p.a, p.b, rng)
      if d is None or kept == n_per_subset:
        continue
      kept += 1
      carry = (p.a % 10 + p.b % 10) >= 10
      high = p.a // 10 + p.b // 10
      prompt, subset = f"{p.question}{d}", f"+{digits}d"
      out.append(EvalItem(prompt, rest(high + (not carry)), TASKS[0], subset))
      out.append(EvalItem(prompt, rest(high + carry), TASKS[1], subset))
  return out
