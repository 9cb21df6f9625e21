"""Two-step prediction, loss thresholds and order of emergence on synthetic sweeps whose task
loss, accuracy and held-out loss follow known laws."""

import json

import numpy as np

from scaling.analysis import prediction
from tests import synthetic_sweep as ss

CUT = 1.6e7  # the ladder: 1M .. 16M parameters; 32M, 64M and 128M are predicted
X0, K = 1.6, -3.0  # accuracy = sigmoid(K (task loss - X0))
THRESHOLD_CHECKPOINTS = tuple(np.geomspace(0.03, 1, 16))


def _accuracy(x0_above_cut: float = X0):
  return lambda tl, h, n: ss.sigmoid_of(X0 if n <= CUT else x0_above_cut, K)(tl)


def _truth(n, x0: float = X0) -> float:
  return float(ss.sigmoid_of(x0, K)(ss.ladder_task_loss(n, 1.0, None)))


def _predict(x0_above_cut: float = X0) -> dict:
  rows = ss.sweep({"arithmetic/+3d": (ss.ladder_task_loss, _accuracy(x0_above_cut))})
  rep = prediction.two_step_prediction(rows, "arithmetic", "+3d", max_params=CUT,
                                       bootstrap=100)
  json.dumps(rep, allow_nan=False)
  assert rep["status"] == "ok", rep["summary"]
  assert [p["size"] for p in rep["predictions"]] == ["s5", "s6", "s7"]
  return rep


def test_prediction_covers_the_larger_sizes():
  rep = _predict()
  assert rep["step1"]["form"] == "power_law"
  assert rep["ladder"] == {"sizes": ["s0", "s1", "s2", "s3", "s4"], "trials": 15,
                           "final_points": 15, "points": 60}  # every checkpoint in step 2
  lo, hi = rep["step1"]["ci"]["alpha"]
  assert lo < 0.35 < hi
  s2 = rep["step2"]
  assert s2["params"]["floor"] == 0.0 and s2["params"]["ceiling"] == 1.0
  assert s2["ci"]["x0"][0] < X0 < s2["ci"]["x0"][1] and s2["ci"]["k"][0] < K < s2["ci"]["k"][1]
  for p in rep["predictions"]:
    lo, hi = p["interval"]
    assert lo <= p["mean_interval"][0] <= p["predicted"] <= p["mean_interval"][1] <= hi
    assert lo < _truth(p["params"]) < hi
    assert len(p["measurements"]) == 3 and all(m["inside"] for m in p["measurements"]), p
    assert p["measured_mean"] == np.mean([m["value"] for m in p["measurements"]])
    tlo, thi = p["task_loss_interval"]
    assert tlo < p["measured_task_loss"] < thi
  assert rep["all_inside"] is True
  assert "3 of 3 measurements inside" in rep["summary"][1]
  assert "constrains nothing" not in " ".join(rep["summary"])


def test_an_interval_over_the_whole_range_is_said_to_constrain_nothing():
  """The stored CPU study: seeds split between 0.1 and 1 at every size, so each predicted
  interval spans nearly [0, 1]; a measurement inside one is no hit."""
  import os
  from scaling.sweep import results
  rows = results.read(os.path.join(os.path.dirname(__file__), "..", "experiments",
                                   "arithmetic_prediction", "results.jsonl"))
  rep = prediction.two_step_prediction(rows, "arithmetic", "+3d", max_params=4e4,
                                       bootstrap=30)
  assert rep["status"] == "ok" and len(rep["predictions"]) == 4
  for p, line in zip(rep["predictions"], rep["summary"][1:]):
    assert p["interval"][1] - p["interval"][0] > prediction.WIDE
    assert "it constrains nothing, and a measurement inside it tests nothing" in line


def test_a_changed_sigmoid_after_the_cut_is_excluded():
  rep = _predict(x0_above_cut=1.2)  # the larger sizes need a lower task loss
  for p in rep["predictions"]:
    lo, hi = p["interval"]
    truth = _truth(p["params"], 1.2)
    assert not lo <= truth <= hi, (truth, p["interval"])
    assert not any(m["inside"] for m in p["measurements"])
  assert rep["all_inside"] is False


def test_chinchilla_when_sizes_have_several_token_counts():
  def task_loss(ratio):
    return lambda n, f, h: 0.4 + 200 * n ** -0.35 + 400 * (f * ratio * n) ** -0.3
  rows = []
  for ratio in (10, 40):
    rows += ss.sweep({"arithmetic/+3d": (task_loss(ratio), _accuracy())}, seeds=(0,),
                     fractions=(0.5, 1.0), tokens_per_param=ratio, tag=f"x{ratio}", seed=ratio)
  rep = prediction.two_step_prediction(rows, "arithmetic", "+3d", max_params=CUT,
                                       bootstrap=30)
  assert rep["status"] == "ok" and rep["step1"]["form"] == "chinchilla"
  # One prediction per (size, token count), each at its own D.
  assert [(p["size"], p["tokens"] / p["params"]) for p in rep["predictions"]] == [
      (f"s{i}", ratio) for i in (5, 6, 7) for ratio in (10, 40)]
  for p in rep["predictions"]:
    lo, hi = p["task_loss_interval"]
    assert lo < p["measured_task_loss"] < hi


def test_too_small_a_ladder_is_reported():
  rows = ss.sweep({"arithmetic/+3d": (ss.ladder_task_loss, _accuracy())}, seeds=(0,))
  rep = prediction.two_step_prediction(rows, "arithmetic", "+3d", max_params=2e6)
  assert rep["status"] == "insufficient" and "at least 3" in rep["summary"][0]


def _thresholds(threshold_of_size) -> dict:
  rows = ss.sweep({"arithmetic/+3d": (
      ss.ladder_task_loss, lambda tl, h, n: ss.sigmoid_of(threshold_of_size(n), -12.0)(h))},
      fractions=THRESHOLD_CHECKPOINTS)
  # One trial as written before checkpoint rows existed: its final row only, no step/final.
  rows = [r for r in rows if r["trial"] != "s0-seed0" or r["final"]]
  rows[0].pop("final"), rows[0].pop("step")
  rep = prediction.loss_threshold(rows, "arithmetic", "+3d")
  json.dumps(rep, allow_nan=False)
  assert len(rep["sizes"]) == 8 and rep["chance"] == 0.0
  return rep


def test_one_loss_threshold_for_every_size():
  rep = _thresholds(lambda n: 2.5)
  assert rep["verdict"] == "same", rep["reason"]
  for s in rep["sizes"]:
    assert s["crossed"] and s["seeds_crossed"] == 3
    lo, hi = s["interval"][0]
    # s0's final-only trial has no earlier checkpoint at chance: its interval is open above.
    assert lo <= s["threshold"][0] <= (np.inf if hi is None else hi)
    assert s["seed_spread"][0][0] <= s["threshold"][0] <= s["seed_spread"][0][1]
    if s["size"] != "s0":  # detected a little above the sigmoid's centre, at acc ~ 0.02
      assert 2.5 < lo < 3.2
  assert "Du et al." in rep["reason"]


def test_size_dependent_thresholds_differ():
  rep = _thresholds(lambda n: 2.2 + 0.12 * np.log2(n / 1e6))
  assert rep["verdict"] == "different", rep["reason"]
  first = [s["threshold"][0] for s in rep["sizes"]]
  assert first[-1] > first[0] + 0.4  # larger sizes cross at a higher loss here


def test_a_size_that_never_crosses_is_reported():
  rep = _thresholds(lambda n: 2.5 if n > 1.5e6 else 1.0)
  small = rep["sizes"][0]
  assert not small["crossed"] and small["threshold"] == [None, None]
  assert small["interval"][0][0] is None and small["interval"][0][1] >= small["lowest_loss"][0]
  assert "never above chance" in rep["summary"][1]
  # s0 went below the others' thresholds without the capability: not the same loss.
  assert rep["verdict"] == "different"


def test_a_later_task_is_ordered_after():
  rows = ss.sweep({
      "arithmetic/+3d": (ss.ladder_task_loss, lambda tl, h, n: ss.sigmoid_of(2.4, -12.0)(h)),
      "analogy/word": (ss.ladder_task_loss, lambda tl, h, n: ss.sigmoid_of(1.75, -12.0)(h))},
      fractions=THRESHOLD_CHECKPOINTS[::2])
  rep = prediction.emergence_order(rows, ["analogy/word", ("arithmetic", "+3d")])
  json.dumps(rep, allow_nan=False)
  first, second = rep["tasks"]
  assert (first["task"], second["task"]) == ("arithmetic", "analogy")
  assert second["transition_source"] == "sigmoid"
  lo, hi = second["transition_interval"]
  assert first["transition_interval"][1] < lo < second["transition_params"] < hi
  assert second["loss_threshold"] < first["loss_threshold"]
  assert rep["pairs"] == [{"earlier": "arithmetic/+3d", "later": "analogy/word",
                           "separated": True}]
  assert "analogy/word emerges at a larger scale than arithmetic/+3d" in rep["summary"][1]
