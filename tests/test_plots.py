"""Figures from a results table: contents checked on the matplotlib objects, files written."""

import re

import matplotlib.pyplot as plt
import numpy as np
import pytest

from scaling.analysis import analyze as report
from scaling.analysis import plots

SIZES = [5_000, 20_000, 80_000, 320_000, 1_280_000]


def _rows():
  rows = []
  for i, n in enumerate(SIZES):
    for seed in (0, 1):
      em = [0.0, 0.02, 0.1, 0.85, 0.99][i]
      ca = [0.3, 0.45, 0.6, 0.9, 0.995][i]
      loss = 1.0 + 30 * n ** -0.4 + 0.001 * seed
      rows.append({
          "trial": f"t{i}{seed}", "kind": "lm", "size": f"s{i}", "seed": seed,
          "status": "completed",
          "params": n, "training_flops": 6 * n * 1e6, "final_eval_loss": loss,
          "metrics": {
              "arithmetic/+3d/exact_match": [em, max(em - 0.02, 0), min(em + 0.02, 1)],
              "arithmetic/+3d/char_accuracy": [ca, ca - 0.01, ca + 0.01],
              "arithmetic/+3d/predicted_exact_match": [em * 0.9, em * 0.8, em],
          },
          "chance": {"arithmetic/+3d/digit_accuracy": 0.1},
      })
  rows.append({**rows[0], "trial": "bad", "status": "diverged", "params": 40_000,
               "final_eval_loss": None, "metrics": {}})
  return rows


def test_capability_plot_contents():
  rows = _rows()
  fig = plots.capability_vs_params(rows, "arithmetic", "+3d")
  ax = fig.axes[0]
  assert ax.get_xscale() == "log"
  assert ax.get_ylim()[0] < 0 < 1 < ax.get_ylim()[1]
  labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
  # The metrics the rows have, in the figure's order (a contrastive model's are absent).
  assert labels == [label for name, label in plots.CAPABILITY_METRICS
                    if f"arithmetic/+3d/{name}" in rows[0]["metrics"]]
  assert len(labels) == 3
  for line in ax.get_lines():
    if not line.get_label().startswith("_"):
      np.testing.assert_array_equal(line.get_xdata(), SIZES)  # one point per size, seeds averaged
  # Error bars: one marker per completed trial and metric (5 sizes x 2 seeds x 3 metrics).
  markers = [c for c in ax.containers]
  assert len(markers) == 3 and all(len(c.lines[0].get_xdata()) == 10 for c in markers)
  assert "parameters" in ax.get_xlabel() and ax.get_title()
  plt.close(fig)


def test_loss_plots_with_fit_and_extrapolation():
  rows = _rows()
  fit = report.loss_fit(rows, "params")
  assert fit is not None and abs(fit.params["alpha"] - 0.4) < 0.05
  fig = plots.loss_vs_params(rows, fit)
  ax = fig.axes[0]
  assert ax.get_xscale() == ax.get_yscale() == "log"
  points, fitted, extrapolated = ax.get_lines()
  assert len(points.get_xdata()) == 10  # the diverged trial is left out
  assert fitted.get_xdata().max() <= max(SIZES) < extrapolated.get_xdata().max()
  assert "extrapolation" in extrapolated.get_label()
  plt.close(fig)
  fig = plots.loss_vs_flops(rows)
  assert fig.axes[0].get_xlabel().startswith("training compute")
  plt.close(fig)


def test_analyze_writes_figures_and_report(tmp_path, capsys):
  import json
  with open(tmp_path / "results.jsonl", "w") as f:
    for r in _rows():  # `all` holds the same items as `+3d`, as when one subset is trained
      r["metrics"].update({k.replace("+3d", "all"): v for k, v in r["metrics"].items()})
      f.write(json.dumps(r) + "\n")
  (tmp_path / "sweep.json").write_text(json.dumps({"headline": ["arithmetic", "+3d"]}))
  assert report.analyze(str(tmp_path)) == 0
  out = capsys.readouterr().out
  assert "exact match" in out and "figures:" in out
  pngs = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
  assert pngs == ["capability_arithmetic_add3d.png", "loss_vs_params.png",
                  "loss_vs_training_flops.png"]  # no second figure of the same scores
  page = (tmp_path / "report.html").read_text()
  # The verdict and the headline figures come first, the method collapsed after them.
  assert page.index('class="verdict"') < page.index("<figure>") < page.index("<details>")
  assert page.index("<details>") < page.index("<h2>Results</h2>")
  lead = page[:page.index("<details>")]
  assert "capability_arithmetic_add3d.png" in lead and "loss_vs_params.png" in lead
  assert "arithmetic +3d: exact match (mean over seeds) goes from" in lead
  images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
  assert len(images) == len(set(images)) == 3
  assert "arithmetic all: the same items and scores as arithmetic +3d" in page
  with open(tmp_path / "figures" / "loss_vs_params.png", "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  analysis = json.loads((tmp_path / "analysis.json").read_text())
  assert "loss_vs_params" in analysis["fits"]
  assert analysis["emergence"]["arithmetic/+3d"]


def test_subsets_with_the_same_values_are_fitted_once(monkeypatch):
  rows = [r for r in _rows() if r["status"] == "completed"]
  for r in rows:  # `all` holds the same items as `+3d`, as when one subset is trained
    r["metrics"].update({k.replace("+3d", "all"): v for k, v in r["metrics"].items()})
  fitted, calls = {}, []
  real = report.emergence.emergence_report
  monkeypatch.setattr(report.emergence, "emergence_report",
                      lambda *a, **k: calls.append(k["task"]) or real(*a, **k))
  first = report.emergence_for(rows, "arithmetic", "+3d", fitted)
  second = report.emergence_for(rows, "arithmetic", "all", fitted)
  assert calls == ["arithmetic +3d"] and second["task"] == "arithmetic all"
  assert second.pop("same_as") == "arithmetic +3d"
  assert {**second, "task": first["task"]} == first
  rows[0]["metrics"]["arithmetic/all/exact_match"] = [0.01, 0.0, 0.03]  # now they differ
  assert report.emergence_for(rows, "arithmetic", "all", fitted) != second
  assert calls == ["arithmetic +3d", "arithmetic all"]


def test_a_sweep_json_without_a_headline_takes_the_sweep_default(tmp_path, monkeypatch):
  """The default headline is the sweep schema's (`spec.base_sweep`), not a second copy."""
  import json
  from scaling.sweep import spec
  with open(tmp_path / "results.jsonl", "w") as f:
    for r in _rows():
      r["metrics"].update({k.replace("+3d", "all"): v for k, v in r["metrics"].items()})
      f.write(json.dumps(r) + "\n")
  (tmp_path / "sweep.json").write_text(json.dumps({"name": "old"}))
  schema = spec.base_sweep

  def with_default(*args):
    base = schema(*args)
    base.headline = ("arithmetic", "all")
    return base

  monkeypatch.setattr(spec, "base_sweep", with_default)
  assert report.analyze(str(tmp_path)) == 0
  analysis = json.loads((tmp_path / "analysis.json").read_text())
  assert analysis["headline"] == ["arithmetic", "all"]


def test_the_table_names_its_kind_and_the_reading_follows_it():
  """The kind of model comes from the table's `kind` column, never from which metrics it
  happens to hold; an older table without the column is one clear error."""
  from scaling.analysis import kinds
  from scaling.errors import UserError
  rows = [{"kind": "dit"}, {"kind": "dit"}]
  assert kinds.reading(rows, "d").loss_label == "held-out denoising error (MSE)"
  assert kinds.reading([{"kind": "gan"}], "d").images
  assert not kinds.reading([{"kind": "lm"}], "d").images
  with pytest.raises(UserError, match="no `kind` column"):
    kinds.reading([{"trial": "a"}], "d")
  with pytest.raises(UserError, match="one known kind"):
    kinds.reading([{"kind": "lm"}, {"kind": "gan"}], "d")


def test_calibration_against_size_averages_seeds_and_draws_both_panels():
  from scaling.analysis import calibration
  rows = _rows()
  for r in rows:
    if r["metrics"]:
      em = r["metrics"]["arithmetic/+3d/exact_match"][0]
      ece = 0.3 - 0.05 * int(r["size"][1:]) + 0.01 * r["seed"]
      r["metrics"]["arithmetic/+3d/ece"] = [ece, ece - 0.02, ece + 0.03]
      r["metrics"]["arithmetic/+3d/answer_confidence"] = [min(em + 0.2, 1), 0, 1]
  block = calibration.report(rows, "arithmetic", "+3d")
  assert [s["params"] for s in block["sizes"]] == SIZES  # the diverged trial is left out
  assert block["sizes"][1]["ece"] == pytest.approx(0.25 + 0.005)
  np.testing.assert_allclose(block["sizes"][1]["ece_per_seed"],
                             [[0.25, 0.23, 0.28], [0.26, 0.24, 0.29]])
  assert "s1: ECE 0.255 (0.25 [0.23, 0.28], 0.26 [0.24, 0.29])" in calibration.summary(block)
  fig = calibration.figure(block)
  left, right = fig.axes
  np.testing.assert_allclose(left.lines[-1].get_ydata(), [s["ece"] for s in block["sizes"]])
  assert [line.get_label() for line in right.lines] == ["mean confidence", "exact match"]
  plt.close(fig)
  assert calibration.report(_rows(), "arithmetic", "+3d") is None  # no ECE: no block
