"""Repeated random strings: the copying task on which induction heads are known to form.

A problem is a random lowercase string (the question) and the same string again (the
answer). Nothing but its earlier occurrence predicts a letter of the answer, so the task
rewards in-context copying alone. It is the distribution of Olsson et al.'s (2022)
induction probe (random tokens, then the same again), with a length that varies so that
no fixed offset solves it.
"""

from __future__ import annotations

import dataclasses
import string
from typing import Iterator

import numpy as np

from scaling.data.tasks import splits

ALPHABET = string.ascii_lowercase
MIN_LETTERS, MAX_LETTERS = 8, 40


@dataclasses.dataclass(frozen=True)
class Problem:
  text: str

  @property
  def question(self) -> str:
    return self.text

  @property
  def answer(self) -> str:
    return self.text


def sample(rng: np.random.Generator) -> Problem:
  n = int(rng.integers(MIN_LETTERS, MAX_LETTERS + 1))
  return Problem("".join(np.asarray(list(ALPHABET))[rng.integers(0, len(ALPHABET), n)]))


def generate(split: str, n: int, *, seed: int, eval_fraction: float,
             max_tries: int | None = None) -> Iterator[Problem]:
  """`n` problems of one split (see `splits.draw`); eval problems are distinct."""
  rng = np.random.default_rng([seed, int(split == "eval"), 7])
  return splits.draw(lambda: sample(rng), split=split, n=n, eval_fraction=eval_fraction,
                     prompt=lambda p: p.question, what="repeated strings",
                     max_tries=max_tries)
