"""Expected calibration error: the definition on a hand-made case, a calibrated predictor
within the band calibration alone produces, a miscalibrated one outside it."""

import numpy as np
import pytest

from scaling.evals import metrics


def test_ece_is_the_weighted_gap_between_accuracy_and_confidence():
  # Two bins of two items: |0.5 - 0.05| and |1.0 - 0.95|, each weighted 1/2.
  assert metrics.expected_calibration_error([0.05, 0.05, 0.95, 0.95], [0, 1, 1, 1]) == \
      pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
  assert metrics.expected_calibration_error([1.0, 0.0], [1, 0]) == 0  # edges bin inside
  with pytest.raises(ValueError):
    metrics.expected_calibration_error([1.2], [1])


def test_a_calibrated_predictor_lies_within_the_calibrated_band():
  """Outcomes drawn as Bernoulli(confidence): in 90-99% of 200 draws the ECE is under the
  band's 95th percentile; the bins' accuracy tracks their confidence."""
  rng = np.random.default_rng(0)
  inside = 0
  for draw in range(200):
    confidence = rng.random(400)
    correct = (rng.random(400) < confidence).astype(float)
    result = metrics.calibration(confidence, correct, n_resamples=200, seed=draw)
    inside += result["ece"] <= result["calibrated_high"]
  assert 0.90 <= inside / 200 <= 0.99, inside
  for b in result["bins"]:
    assert b["low"] <= b["confidence"] <= b["high"] and abs(b["accuracy"] - b["confidence"]) < 0.3


def test_an_overconfident_predictor_is_flagged():
  rng = np.random.default_rng(1)
  confidence = rng.random(400)
  correct = (rng.random(400) < confidence ** 2).astype(float)  # right less often than it says
  result = metrics.calibration(confidence, correct)
  assert result["ci_low"] > result["calibrated_high"]
  assert result["ece"] == pytest.approx(np.mean(confidence - confidence ** 2), abs=0.05)
