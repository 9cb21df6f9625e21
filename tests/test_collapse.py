"""The collapse rule, and `scaling plot` on an image sweep: collapsed runs counted per size,
a GAN's learning rate chosen by sample quality rather than by its discriminator's loss."""

import json
import os

import pytest

from scaling.analysis import analyze, collapse
from tools import compare_sweeps

SUBSET = "generator"


def _row(size, params, seed, lr, *, fd, recall, classes, eval_loss=1.3, status="completed"):
  metrics = {}
  for name, value in (("fd", fd), ("kid", fd / 10), ("class_accuracy", 0.8),
                      ("precision", 0.7), ("recall", recall), ("class_coverage", classes)):
    metrics[f"image_quality/{SUBSET}/{name}"] = [value, value, value]
  return {"trial": f"{size}-lr{lr}-seed{seed}", "kind": "gan", "size": size, "seed": seed,
          "params": params,
          "learning_rate": lr, "status": status, "final": True, "step": 100,
          "samples": 3200, "tokens": None, "training_flops": 1e9 * params / 1e4,
          "final_eval_loss": None if status == "diverged" else eval_loss,
          "d_model": params // 1000, "metrics": {} if status == "diverged" else metrics,
          "chance": {}}


@pytest.mark.parametrize("kwargs, expected", [
    (dict(recall=0.3, classes=1.0), "ok"),
    (dict(recall=0.3, classes=0.4), "collapsed"),   # 4 of 10 classes drawn
    (dict(recall=0.05, classes=1.0), "collapsed"),  # near-copies within each class
    (dict(recall=0.3, classes=1.0, status="diverged"), "diverged"),
])
def test_verdict_follows_the_documented_rule(kwargs, expected):
  assert collapse.verdict(_row("g0", 10_000, 0, 1e-3, fd=30.0, **kwargs), SUBSET) == expected
  assert collapse.verdict({"status": "completed", "metrics": {}}, SUBSET) == "-"


@pytest.fixture
def gan_sweep(tmp_path):
  """Two sizes x two rates x two seeds. The high rate has the lower discriminator loss
  but the worse samples, and one of its runs collapsed, one diverged."""
  rows = []
  for size, params in (("g0", 10_000), ("g1", 50_000)):
    for seed in (0, 1):
      rows.append(_row(size, params, seed, 1e-3, fd=20.0 - 5 * (size == "g1") + seed,
                       recall=0.3, classes=1.0, eval_loss=1.35))
    rows.append(_row(size, params, 0, 3e-3, fd=60.0, recall=0.02, classes=1.0,
                     eval_loss=0.9))
    rows.append(_row(size, params, 1, 3e-3, fd=0, recall=0, classes=0, status="diverged"))
  with open(tmp_path / "results.jsonl", "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
  with open(tmp_path / "sweep.json", "w") as f:
    json.dump({"name": "gan", "headline": ["image_quality", SUBSET]}, f)
  return str(tmp_path)


def test_plot_picks_the_rate_by_fd_and_counts_collapsed_runs(gan_sweep, capsys):
  assert analyze.analyze(gan_sweep) == 0
  with open(os.path.join(gan_sweep, "analysis.json")) as f:
    analysis = json.load(f)
  rates = analysis["learning_rates"]
  assert rates["metric"] == f"image_quality/{SUBSET}/fd"
  assert {s: v["best_learning_rate"] for s, v in rates["sizes"].items()} == {
      "g0": 1e-3, "g1": 1e-3}
  # Shares at the chosen rate (the table and fits use each size's best rate).
  assert analysis["collapse"] == {
      "g0": {"params": 10_000, "trials": 2, "collapsed": 0, "diverged": 0},
      "g1": {"params": 50_000, "trials": 2, "collapsed": 0, "diverged": 0}}
  out = capsys.readouterr().out
  assert "recall" in out and "verdict" in out
  for name in ("fd_vs_params", "recall_vs_params", "class_coverage_vs_params"):
    assert os.path.exists(os.path.join(gan_sweep, "figures", f"{name}.png")), name
  assert not os.path.exists(os.path.join(gan_sweep, "figures", "fd_vs_steps.png"))


def test_comparison_counts_every_trial(gan_sweep, capsys):
  assert compare_sweeps.main([f"GAN={gan_sweep}"]) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert lines[0].startswith("| family | size | params | lr | trials | fd |")
  body = [line.split(" | ") for line in lines[2:]]
  assert len(body) == 4  # two sizes x two rates
  g0_high = next(cells for cells in body if cells[1] == "g0" and cells[3] == "0.003")
  # trials 2; FD median over the one scored run; one collapsed, one diverged
  assert g0_high[4] == "2" and g0_high[5] == "60"
  assert g0_high[-2:] == ["1", "1 |"]
  g1_low = next(cells for cells in body if cells[1] == "g1" and cells[3] == "0.001")
  assert g1_low[5] == "15.5" and g1_low[-2:] == ["0", "0 |"]
  assert compare_sweeps.main(["no-label"]) == 1
  assert capsys.readouterr().err.startswith("error: expected LABEL=SWEEP_DIR")
