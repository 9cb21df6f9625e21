"""Metric functions on hand-made cases, and bootstrap interval coverage."""

import math

import numpy as np
import pytest

from scaling.evals import metrics


def test_exact_match_strips_surrounding_whitespace():
  assert metrics.exact_match(" 357\n", "357") == 1.0
  assert metrics.exact_match("35 7", "357") == 0.0
  assert metrics.exact_match("", "0") == 0.0


@pytest.mark.parametrize("a, b, d", [
    ("kitten", "sitting", 3), ("", "abc", 3), ("abc", "abc", 0), ("flaw", "lawn", 2),
    (["i", "j", "k", "m"], ["i", "j", "k", "l"], 1), ([], [], 0)])
def test_edit_distance(a, b, d):
  assert metrics.edit_distance(a, b) == d
  assert metrics.edit_distance(b, a) == d


def test_normalized_edit_distance():
  assert metrics.normalized_edit_distance("kitten", "sitting") == pytest.approx(3 / 7)
  assert metrics.normalized_edit_distance("", "") == 0.0
  assert metrics.normalized_edit_distance("abc", "xyz") == 1.0


def test_per_position_accuracy():
  acc = metrics.per_position_accuracy(["123", "19", " 4 ", "1234"], ["123", "123", "4", "1"])
  # position 0: all four right; 1: "123" and "19" vs "2","2" -> 1/2; 2: "3" vs "3", missing.
  np.testing.assert_allclose(acc, [1.0, 0.5, 0.5])


def test_per_digit_accuracy_aligns_place_values():
  # Right-aligned, "99" vs "100": units 9/0 wrong, tens 9/0 wrong, hundreds missing.
  np.testing.assert_allclose(metrics.per_digit_accuracy(["357", "99"], ["357", "100"]),
                             [0.5, 0.5, 0.5])
  np.testing.assert_allclose(metrics.per_digit_accuracy(["457"], ["357"]), [1, 1, 0])
  np.testing.assert_allclose(metrics.per_digit_accuracy(["457"], ["357"], align="left"),
                             [0, 1, 1])
  assert metrics.digit_accuracy("1357", "357") == 1.0  # an extra leading digit is not scored
  assert metrics.digit_accuracy("57", "357") == pytest.approx(2 / 3)
  assert metrics.DIGIT_CHANCE == 0.1


def test_teacher_forced_scores():
  lp = np.log([0.5, 0.8, 0.25])
  assert metrics.answer_logprob(lp) == pytest.approx(math.log(0.1))
  assert metrics.mean_token_prob(lp) == pytest.approx((0.5 + 0.8 + 0.25) / 3)
  assert metrics.predicted_exact_match(lp) == pytest.approx(0.1)
  assert metrics.predicted_exact_match([0.0, 0.0]) == 1.0


def test_multiple_choice():
  assert metrics.multiple_choice_accuracy([0.1, 2.0, -1.0], 1) == 1.0
  assert metrics.multiple_choice_accuracy([0.1, 2.0, -1.0], 0) == 0.0
  assert metrics.multiple_choice_accuracy([0.1, 2.0, -1.0], [0, 1]) == 1.0
  assert metrics.multiple_choice_grade([0.1, 2.0, -1.0], [0.0, 0.5, 1.0]) == 0.5
  np.testing.assert_allclose(metrics.choice_probs(np.log([1, 2, 1])), [0.25, 0.5, 0.25])


def test_brier_score_by_hand():
  # (0.7-1)^2 + 0.2^2 + 0.1^2 = 0.09 + 0.04 + 0.01
  assert metrics.brier_score([0.7, 0.2, 0.1], 0) == pytest.approx(0.14)
  # (0.7)^2 + (0.2-1)^2 + 0.1^2 = 0.49 + 0.64 + 0.01
  assert metrics.brier_score([0.7, 0.2, 0.1], 1) == pytest.approx(1.14)
  assert metrics.brier_score([0.0, 1.0], 0) == 2.0
  assert metrics.brier_score([0.25] * 4, 2) == pytest.approx(metrics.chance_brier(4))
  with pytest.raises(ValueError, match="probability distribution"):
    metrics.brier_score([0.5, 0.6], 0)


def test_chance_baselines():
  assert metrics.chance_multiple_choice(4) == 0.25
  assert metrics.chance_multiple_choice([2, 4]) == pytest.approx(0.375)
  assert metrics.chance_brier(2) == 0.5


def test_bootstrap_ci_of_a_constant_and_of_nothing():
  assert metrics.bootstrap_ci([1.0] * 10) == (1.0, 1.0)
  assert all(math.isnan(v) for v in metrics.bootstrap_ci([]))


def test_bootstrap_ci_takes_any_statistic():
  low, high = metrics.bootstrap_ci(np.arange(101.0), statistic=np.median)
  assert low < 50 < high
  low2, high2 = metrics.bootstrap_ci(np.arange(101.0), statistic=lambda x: float(np.median(x)))
  assert (low2, high2) == (low, high)


def test_bootstrap_ci_covers_the_true_mean():
  rng = np.random.default_rng(1234)
  p, hits, repeats = 0.3, 0, 200
  for r in range(repeats):
    values = (rng.random(200) < p).astype(float)
    low, high = metrics.bootstrap_ci(values, confidence=0.9, seed=r)
    hits += low <= p <= high
  assert 0.82 <= hits / repeats <= 0.97


def test_summarize():
  s = metrics.summarize([0.0, 1.0, 1.0, 0.0])
  assert s["mean"] == 0.5 and s["n"] == 4
  assert 0.0 <= s["ci_low"] <= 0.5 <= s["ci_high"] <= 1.0
