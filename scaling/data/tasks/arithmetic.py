"""Arithmetic problems: `12+345=357`, optionally with the answer written reversed.

Train and eval splits are disjoint by construction: whether a problem belongs to the eval
split is a pure function of the problem (a hash of its text), so a training sampler can
reject eval problems without ever seeing the eval set.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

from scaling.data.tasks import splits

OPS = ("+", "-", "*")


@dataclasses.dataclass(frozen=True)
class Problem:
  a: int
  op: str
  b: int

  @property
  def question(self) -> str:
    return f"{self.a}{self.op}{self.b}="

  @property
  def result(self) -> int:
    return {"+": self.a + self.b, "-": self.a - self.b, "*": self.a * self.b}[self.op]

  def answer(self, reverse: bool) -> str:
    """The answer as written; reversed keeps a leading minus sign in front."""
    r = self.result
    digits = str(abs(r))
    if reverse:
      digits = digits[::-1]
    return ("-" if r < 0 else "") + digits


def in_eval_split(problem: Problem, eval_fraction: float) -> bool:
  """Deterministic membership of the held-out split, from the problem's text alone."""
  return splits.in_eval_split(problem.question, eval_fraction)


def _operand(rng: np.random.Generator, min_digits: int, max_digits: int) -> int:
  n = int(rng.integers(min_digits, max_digits + 1))
  low = 0 if n == 1 else 10 ** (n - 1)
  return int(rng.integers(low, 10 ** n))


def sample(rng: np.random.Generator, ops: tuple[str, ...], min_digits: int,
           max_digits: int) -> Problem:
  """A uniformly random problem: op, then each operand's digit count, then its value."""
  op = ops[int(rng.integers(len(ops)))]
  return Problem(_operand(rng, min_digits, max_digits), op,
                 _operand(rng, min_digits, max_digits))


def generate(split: str, n: int, *, seed: int, ops: tuple[str, ...], min_digits: int,
             max_digits: int, eval_fraction: float,
             max_tries: int | None = None) -> Iterator[Problem]:
  """`n` problems of one split (see `splits.draw`); eval problems are distinct."""
  # Different streams per split so the two never share random state.
  rng = np.random.default_rng([seed, int(split == "eval")])
  return splits.draw(lambda: sample(rng, ops, min_digits, max_digits), split=split, n=n,
                     eval_fraction=eval_fraction, prompt=lambda p: p.question,
                     what=f"{min_digits}-{max_digits} digit {''.join(ops)}",
                     max_tries=max_tries)


def max_chars(ops: tuple[str, ...], max_digits: int) -> tuple[int, int]:
  """Longest question and answer, in characters (each is one token)."""
  question = 2 * max_digits + 2
  answer = max({"+": max_digits + 1, "-": max_digits + 1, "*": 2 * max_digits}[op]
               for op in ops)
  return question, answer
