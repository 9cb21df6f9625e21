"""The commitment suite's items: the forced digit is wrong and flips the carry, and each
answer is the arithmetic its definition names, recomputed here from the operands."""

import re

import numpy as np
import pytest

from scaling.evals import commitment, suites
from tests.helpers import tiny_config


def test_each_answer_is_the_rest_of_the_sum_it_names():
  cfg = tiny_config("data.min_digits=2", "data.max_digits=3")
  items = suites.build(["commitment"], cfg.data, n_per_subset=50, task_files=[])
  assert {it.subset for it in items} == {"+2d", "+3d"}
  consistent = [it for it in items if it.task == "commitment_consistent"]
  recovered = [it for it in items if it.task == "commitment_recovered"]
  assert len(consistent) == len(recovered) == 100
  for c, r in zip(consistent, recovered):
    assert c.prompt == r.prompt and c.answer != r.answer
    a, b, d = map(int, re.fullmatch(r"(\d+)\+(\d+)=(\d)", c.prompt).groups())
    true = str(a + b)[::-1]
    assert d != int(true[0])  # the forced digit is wrong
    assert r.answer == true[1:]  # recovered: the true sum's other digits
    # Consistent: the sum if d were right, keeping either operand (both give the same rest).
    for kept, other in ((a, b), (b, a)):
      changed = other - other % 10 + (d - kept % 10) % 10
      assert str(kept + changed)[::-1] == f"{d}{c.answer}", (c.prompt, kept)


def test_no_items_without_reversed_addition():
  assert suites.build(["commitment"], tiny_config("data.reverse_answer=False").data,
                      n_per_subset=5, task_files=[]) == []
  assert commitment.forced_digit(10, 20, np.random.default_rng(0)) is None


@pytest.mark.parametrize("a, b, digits", [(47, 38, range(8, 10)), (21, 34, range(0, 1))])
def test_the_forced_digit_flips_the_carry(a, b, digits):
  seen = {commitment.forced_digit(a, b, np.random.default_rng(s)) for s in range(50)}
  assert seen == set(digits)
