"""The emergence report tells sharp transitions from smooth growth."""

import json

import numpy as np

from scaling.analysis import emergence

X = np.linspace(4, 7, 7)  # log10 parameters of seven model sizes


def _with_ci(y, half=0.02):
  return (y, y - half, y + half)


def _sharp(x0=5.6, k=8.0):
  return 1 / (1 + np.exp(-k * (X - x0)))


def _noisy(y, seed):
  return np.clip(y + 0.01 * np.random.default_rng(seed).standard_normal(len(y)), 0, 1)


def test_sharp_transition_is_a_sigmoid():
  y = _noisy(_sharp(), 0)
  report = emergence.emergence_report(X, {"exact_match": _with_ci(y)}, {"exact_match": 0.0},
                                      bootstrap=100)
  json.dumps(report, allow_nan=False)
  m = report["metrics"]["exact_match"]
  assert m["verdict"] == "sigmoid", m["reason"]
  assert set(m["fits"]) == {"linear", "power_law", "sigmoid"}
  assert m["transition_in_range"]
  lo, hi = m["transition_ci"]
  assert lo <= 10 ** 5.6 <= hi and lo <= m["transition_params"] <= hi


def test_linear_growth_is_smooth():
  y = _noisy(0.2 + 0.6 * (X - 4) / 3, 1)
  report = emergence.emergence_report(X, {"token_accuracy": _with_ci(y)})
  m = report["metrics"]["token_accuracy"]
  assert m["verdict"] == "smooth", m["reason"]
  assert m["best_smooth"] == "linear"
  assert m["transition_params"] is None


def test_continuous_metric_rises_smoothly_where_exact_match_jumps():
  exact = _noisy(_sharp(), 2)
  smooth = _noisy(0.3 + 0.6 * (X - 4) / 3, 3)
  jumpy = _noisy(0.3 + 0.6 * _sharp(k=10.0), 4)
  report = emergence.emergence_report(
      X, {"exact_match": _with_ci(exact), "token_accuracy": _with_ci(smooth),
          "digit_accuracy": _with_ci(jumpy)},
      exact_metric="exact_match", continuous_metric="token_accuracy", bootstrap=20,
      power_law=False)
  c = report["comparison"]
  assert c["continuous_rises_smoothly_where_exact_jumps"] is True, c["reason"]
  assert c["exact_jumpiness"] >= 0.5 > c["continuous_jumpiness"]
  # A continuous metric that jumps at the same step is not smoother.
  report = emergence.emergence_report(
      X, {"exact_match": _with_ci(exact), "digit_accuracy": _with_ci(jumpy)},
      exact_metric="exact_match", continuous_metric="digit_accuracy", bootstrap=20,
      power_law=False)
  assert report["comparison"]["continuous_rises_smoothly_where_exact_jumps"] is False
  # A "jump" no larger than the intervals around it is not flagged.
  flat = 0.01 + 0.002 * (X > 5.5)
  report = emergence.emergence_report(
      X, {"exact_match": _with_ci(flat), "token_accuracy": _with_ci(smooth)},
      exact_metric="exact_match", continuous_metric="token_accuracy", bootstrap=20,
      power_law=False)
  c = report["comparison"]
  assert c["exact_jump_beyond_ci"] is False
  assert c["continuous_rises_smoothly_where_exact_jumps"] is False


def test_few_sizes_fall_back_to_a_line():
  x, y = X[:3], _sharp()[:3]
  report = emergence.emergence_report(x, {"exact_match": (y, None, None)},
                                      exact_metric="exact_match",
                                      continuous_metric="exact_match")
  m = report["metrics"]["exact_match"]
  assert m["verdict"] == "insufficient" and set(m["fits"]) == {"linear"}
  assert "at least 4" in m["reason"]
  text = emergence.format_report(report)
  assert "exact_match: insufficient" in text and "at least 4" in text
  json.dumps(report, allow_nan=False)
  assert emergence.emergence_report(X[:1], {"m": ([0.5],)})["metrics"]["m"]["verdict"] == \
      "insufficient"


def test_repeated_sizes_and_format():
  x = np.repeat(X, 2)  # two seeds per size
  y = np.repeat(_sharp(), 2) + np.tile([-0.01, 0.01], len(X))
  report = emergence.emergence_report(x, {"exact_match": (np.clip(y, 0, 1),)},
                                      {"exact_match": 0.0}, bootstrap=20, task="add3")
  assert report["n_sizes"] == 7
  assert report["metrics"]["exact_match"]["verdict"] == "sigmoid"
  text = emergence.format_report(report)
  assert text.startswith("add3: 7 sizes") and "transition at" in text


def test_four_sizes_need_the_chance_level():
  x = np.linspace(4, 7, 4)
  y = 0.1 + 0.9 / (1 + np.exp(-6 * (x - 5.5)))
  values = {"exact_match": (y,)}
  free = emergence.emergence_report(x, values, bootstrap=0)["metrics"]["exact_match"]
  assert free["verdict"] == "insufficient" and "chance level" in free["reason"]
  fixed = emergence.emergence_report(x, values, {"exact_match": 0.1}, bootstrap=0)
  assert fixed["metrics"]["exact_match"]["verdict"] == "sigmoid"


def test_gradual_s_curve_is_smooth():
  y = _noisy(0.05 + 0.9 * ((X - 4) / 3) ** 2, 5)  # accelerating, but over the whole range
  m = emergence.emergence_report(X, {"accuracy": _with_ci(y)})["metrics"]["accuracy"]
  assert m["verdict"] == "smooth", m["reason"]
  assert m["fits"]["sigmoid"]["width_decades"] > 1.5
