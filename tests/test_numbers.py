"""One number formatter for every table and printout: significant digits, an exponent
where fixed notation would hide them."""

import math

import numpy as np
import pytest

from scaling.numbers import fmt, interval, signed


@pytest.mark.parametrize("value, text", [
    (3.5e-24, "3.5e-24"), (3.548401106727e-24, "3.548e-24"), (-3.5e-24, "-3.5e-24"),
    (1e24, "1e24"), (1.2345678e24, "1.235e24"), (0, "0"), (0.0, "0"), (-0.0, "0"),
    (-2.5, "-2.5"), (-1234.5678, "-1235"), (math.nan, "nan"), (math.inf, "inf"),
    (-math.inf, "-inf"), (1.0, "1"), (0.0507, "0.0507"), (1.57904, "1.579"),
    (9.99996, "10"), (0.0001234, "0.0001234"), (1.234e-5, "1.234e-5"),
    (123456.7, "123500"), (999999.9, "1e6"), (123200, "123200"), (np.float32(0.07), "0.07"),
    (np.int64(5), "5"), (None, "-"),
])
def test_fmt(value, text):
  assert fmt(value) == text


def test_digits_signs_and_intervals():
  assert fmt(1 / 3, 2) == "0.33" and fmt(2 / 3, 7) == "0.6666667"
  assert signed(0.91, 3) == "+0.91" and signed(-0.5) == "-0.5" and signed(0) == "0"
  assert interval(0.07, 0.02, 0.12) == "0.07 [0.02, 0.12]"
  assert interval(2e-9, 1e-9, 3e-9) == "2e-9 [1e-9, 3e-9]"


def test_reproduce_table_keeps_exponents(capsys):
  from scaling.sweep import reproduce
  reproduce._print_rows([("eval_loss", 3.548401106727e-24, 3.548401106727e-24, True),
                         ("params", 123200, 123200, True), ("loss", 1e24, None, False)])
  out = capsys.readouterr().out
  assert "3.548401e-24" in out and "3.548401106727" not in out
  assert "1e24" in out and "123200" in out and "DIFFERENT" in out


def test_tables_keep_exponents():
  from scaling.analysis import tables
  from scaling.evals import aggregate
  stats = {"mean": 3.5e-24, "ci_low": 1e-24, "ci_high": 6e-24}
  eval_table = aggregate.table({"arithmetic": {"+3d": {"n": 5, "metrics": {
      "exact_match": stats}}}})
  assert "3.5e-24 [1e-24, 6e-24]" in eval_table
  row = {"size": "s0", "seed": 0, "params": 6372, "status": "completed",
         "final_eval_loss": 2.5e-7, "metrics": {"arithmetic/+3d/exact_match": [1e-5, 0, 3e-5]}}
  text = tables.capability_table([row], "arithmetic", "+3d")
  assert "2.5e-7" in text and "1e-5 [0, 3e-5]" in text


def test_a_zero_width_interval_is_flagged_under_the_table():
  from scaling.analysis import tables
  from scaling.evals import aggregate
  from scaling.numbers import ZERO_WIDTH
  table = lambda low, high: aggregate.table({"arithmetic": {"+3d": {"n": 50, "metrics": {
      "exact_match": {"mean": 0.0, "ci_low": low, "ci_high": high}}}}})
  assert table(0.0, 0.0).splitlines()[-1] == ZERO_WIDTH
  assert ZERO_WIDTH not in table(0.0, 0.06)
  row = {"size": "s0", "seed": 0, "params": 6372, "status": "completed",
         "final_eval_loss": 1.5, "metrics": {"arithmetic/+3d/exact_match": [0, 0, 0]}}
  assert tables.capability_table([row], "arithmetic", "+3d").splitlines()[-1] == ZERO_WIDTH

