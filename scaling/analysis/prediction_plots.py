"""Figures over training checkpoints: capability against tokens and against held-out loss for
every (size, step), after Du et al. (2024), and a two-step prediction (Bhagia et al. 2024)
against the measurements. Each function returns a matplotlib Figure; `plots.save` writes it.
"""

from __future__ import annotations

import numpy as np

from scaling.analysis import fits
from scaling.analysis.plots import plt
from scaling.analysis.checkpoints import (by_size, chance, completed, group_by, is_final,
                                          training_order)


def _colours(n: int):
  return plt.cm.viridis(np.linspace(0.05, 0.9, max(n, 1)))


def _chance_line(ax, rows, name: str):
  ax.axhline(chance(rows, name), color="grey", linestyle=":", linewidth=1, label="chance")


def capability_vs_tokens(rows, task: str, subset: str, *, metric: str = "exact_match"):
  """One line per size through its checkpoints (mean over seeds at each step)."""
  name = f"{task}/{subset}/{metric}"
  rows = [r for r in completed(rows) if name in r["metrics"] and r.get("tokens")]
  sizes = by_size(rows)
  fig, ax = plt.subplots(figsize=(6.4, 4.4))
  for colour, (size, rs) in zip(_colours(len(sizes)), sizes):
    steps = sorted(group_by(rs, "step" if all("step" in r for r in rs) else "tokens").values(),
                   key=lambda g: training_order(g[0]))
    x = [np.mean([r["tokens"] for r in g]) for g in steps]
    y = [np.mean([r["metrics"][name][0] for r in g]) for g in steps]
    ax.plot(x, y, "o-", color=colour, markersize=3, label=f"{size} ({rs[0]['params']:.2g})")
  _chance_line(ax, rows, name)
  ax.set_xscale("log")
  ax.set_ylim(-0.02, 1.02)
  ax.set_xlabel("training tokens")
  ax.set_ylabel(f"{metric} (mean over seeds)")
  ax.set_title(f"{task} {subset}: {metric} during training")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7, title="size (parameters)", title_fontsize=7)
  fig.tight_layout()
  return fig


def capability_vs_loss(rows, task: str, subset: str, *, metric: str = "exact_match",
                       loss: str = "held_out"):
  """Every (size, step) point against held-out loss (`loss='task'`: -answer_logprob), all
  sizes on one axis, lower loss to the right: emergence at one loss lines the sizes up."""
  name, lp = f"{task}/{subset}/{metric}", f"{task}/{subset}/answer_logprob"

  def x_of(r):
    if loss == "task":
      return -r["metrics"][lp][0] if lp in r["metrics"] else None
    return r.get("final_eval_loss")

  rows = [r for r in completed(rows) if name in r["metrics"] and x_of(r) is not None]
  sizes = by_size(rows)
  fig, ax = plt.subplots(figsize=(6.4, 4.4))
  for colour, (size, rs) in zip(_colours(len(sizes)), sizes):
    x = np.array([x_of(r) for r in rs], float)
    m = np.array([r["metrics"][name] for r in rs], float)
    ax.errorbar(x, m[:, 0], yerr=[m[:, 0] - m[:, 1], m[:, 2] - m[:, 0]], fmt="o",
                color=colour, markersize=3, elinewidth=0.6, alpha=0.8,
                label=f"{size} ({rs[0]['params']:.2g})")
  _chance_line(ax, rows, name)
  ax.invert_xaxis()
  ax.set_ylim(-0.02, 1.02)
  ax.set_xlabel("held-out loss (nats/token)" if loss != "task"
                else f"task loss (-answer log-prob, {task} {subset})")
  ax.set_ylabel(metric)
  ax.set_title(f"{task} {subset}: {metric} against loss, every checkpoint")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7, title="size (parameters)", title_fontsize=7)
  fig.tight_layout()
  return fig


def _fit(d: dict) -> fits.Fit:
  return fits.Fit(d["form"], {k: np.nan if v is None else v for k, v in d["params"].items()})


def prediction_vs_measurement(rows, report: dict):
  """Left: the ladder's checkpoints, the step-2 sigmoid and the larger sizes' measurements
  against task loss. Right: the chained prediction against size, with its interval."""
  task, subset, metric = report["task"], report["subset"], report["metric"]
  name, lp = f"{task}/{subset}/{metric}", f"{task}/{subset}/answer_logprob"
  rows = [r for r in completed(rows) if name in r["metrics"] and lp in r["metrics"]]
  ladder = [r for r in rows if r["params"] <= report["max_params"]]
  above = [r for r in rows if r["params"] > report["max_params"] and is_final(r)]
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
  for ax, x_of, sel in ((left, lambda r: -r["metrics"][lp][0], ladder),
                        (right, lambda r: r["params"], [r for r in ladder if is_final(r)])):
    ax.plot([x_of(r) for r in sel], [r["metrics"][name][0] for r in sel], "o", color="C0",
            markersize=3, alpha=0.6, label="ladder" + (" checkpoints" if ax is left else ""))
    ax.plot([x_of(r) for r in above], [r["metrics"][name][0] for r in above], "s",
            color="C3", markersize=4, label="measured (larger sizes, each seed)")
    _chance_line(ax, rows, name)
  preds = report.get("predictions", [])
  if report.get("status") == "ok":
    step1, step2 = _fit(report["step1"]), _fit(report["step2"])
    x = np.array([-r["metrics"][lp][0] for r in rows], float)
    grid = np.linspace(x.min(), x.max(), 200)
    left.plot(grid, step2.predict(grid), "-", color="C1", label="step 2: sigmoid fit")
    n = np.array([r["params"] for r in rows], float)
    if step1.form == "power_law":
      ngrid = np.geomspace(n.min(), n.max(), 200)
      right.plot(ngrid, step2.predict(step1.predict(ngrid)), "-", color="C1",
                 label="two-step prediction")
    if preds:
      px = np.array([p["params"] for p in preds], float)
      py = np.array([np.nan if p["predicted"] is None else p["predicted"] for p in preds])
      iv = np.array([[np.nan if v is None else v for v in p["interval"]] for p in preds])
      right.errorbar(px, py, yerr=[py - iv[:, 0], iv[:, 1] - py], fmt="D", color="C1",
                     capsize=4, label="predicted (95% interval)")
  left.invert_xaxis()
  left.set_xlabel("task loss (-answer log-prob)")
  left.set_title(f"step 2: {metric} against task loss")
  right.set_xscale("log")
  right.axvline(report["max_params"], color="grey", linewidth=0.8, linestyle="--")
  right.set_xlabel("parameters")
  right.set_title(f"prediction from sizes up to {report['max_params']:.3g}")
  for ax in (left, right):
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.suptitle(f"{task} {subset}: two-step prediction against measurement", fontsize=10)
  fig.tight_layout()
  return fig
