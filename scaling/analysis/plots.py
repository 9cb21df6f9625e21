"""Figures from a sweep's results table: capability and loss against model size and compute.

Each function takes the table's rows (see `scaling.sweep.results`) and returns a matplotlib
Figure; `save` writes it as PNG and SVG. Nothing here reads a model or a run directory.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # Files only; no display needed.
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# The sharp view next to smooth views of the same outputs. Per-digit accuracy (which has
# a chance level, 0.1) stands in for per-character accuracy where a task has it.
CAPABILITY_METRICS = (
    ("exact_match", "exact match (greedy)"),
    ("char_accuracy", "per-character accuracy"),
    ("predicted_exact_match", "predicted exact match (product of token probs)"),
    # Contrastive models: top-1 right, and the probability given to the right candidates.
    ("accuracy", "top-1 accuracy"),
    ("recall_at_1", "recall@1"),
    ("recall_at_5", "recall@5"),
    ("correct_prob", "probability of the right candidates"),
)
DIGIT_METRIC = ("digit_accuracy", "per-digit accuracy")


def label(ax, xlabel: str, ylabel: str, title: str, *, legend_size: int = 8, ncol: int = 1):
  """Axis labels, title, a light grid on major and minor ticks, and the legend: the finish
  every figure of the toolkit shares."""
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=legend_size, ncol=ncol)


def _metrics_for(rows, task: str, subset: str):
  has_digits = any(f"{task}/{subset}/digit_accuracy" in r["metrics"] for r in rows)
  return [DIGIT_METRIC if has_digits and m == "char_accuracy" else (m, label)
          for m, label in CAPABILITY_METRICS]


def _done(rows):
  return [r for r in rows if r["status"] == "completed"]


def capability_vs_params(rows, task: str, subset: str, *, param_key: str = "params"):
  """One line per metric: the mean over seeds, each seed's bootstrap 95% interval as bars."""
  rows = _done(rows)
  fig, ax = plt.subplots(figsize=(6.4, 4.4))
  for i, (metric, label) in enumerate(_metrics_for(rows, task, subset)):
    name = f"{task}/{subset}/{metric}"
    points = [(r[param_key], *r["metrics"][name]) for r in rows if name in r["metrics"]]
    if not points:
      continue
    n, mean, low, high = map(np.asarray, zip(*points))
    color = f"C{i}"
    ax.errorbar(n, mean, yerr=[mean - low, high - mean], fmt="o", color=color, alpha=0.5,
                markersize=4, capsize=2)
    sizes = np.unique(n)
    ax.plot(sizes, [mean[n == s].mean() for s in sizes], "-", color=color, label=label)
    chance = next((r["chance"][name] for r in rows if name in r.get("chance", {})), None)
    if chance is not None:
      ax.axhline(chance, color=color, linestyle=":", linewidth=1, label=f"chance ({label})")
  ax.set_xscale("log")
  ax.set_ylim(-0.02, 1.02)
  ax.set_xlabel("parameters" if param_key == "params" else "non-embedding parameters")
  ax.set_ylabel("score (fraction)")
  ax.set_title(f"{task} {subset}: capability vs model size")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc="upper left")
  fig.tight_layout()
  return fig


def _loss_plot(rows, x_key: str, xlabel: str, title: str, fit=None,
               ylabel: str = "held-out loss (nats/token)"):
  rows = [r for r in _done(rows) if r.get("final_eval_loss") is not None and r.get(x_key)]
  fig, ax = plt.subplots(figsize=(6.4, 4.4))
  x = np.asarray([r[x_key] for r in rows], float)
  y = np.asarray([r["final_eval_loss"] for r in rows], float)
  ax.plot(x, y, "o", color="C0", label="trials (final held-out loss)")
  if fit is not None and len(x):
    grid = np.geomspace(x.min(), x.max() * 10, 200)
    inside = grid <= x.max()
    ax.plot(grid[inside], fit.predict(grid[inside]), "-", color="C1", label=fit.label)
    ax.plot(grid[~inside], fit.predict(grid[~inside]), "--", color="C1",
            label="extrapolation (10x)")
  ax.set_xscale("log")
  ax.set_yscale("log")
  label(ax, xlabel, ylabel, title)
  fig.tight_layout()
  return fig


def loss_vs_params(rows, fit=None, *, param_key: str = "params", **kwargs):
  label = "parameters" if param_key == "params" else "non-embedding parameters"
  return _loss_plot(rows, param_key, label, "loss vs model size", fit, **kwargs)


def loss_vs_flops(rows, fit=None, **kwargs):
  return _loss_plot(rows, "training_flops", "training compute (FLOPs)",
                    "loss vs training compute", fit, **kwargs)


def save(fig, directory: str, name: str) -> list[str]:
  os.makedirs(directory, exist_ok=True)
  paths = [os.path.join(directory, f"{name}.{ext}") for ext in ("png", "svg")]
  for path in paths:
    fig.savefig(path, dpi=120)
  plt.close(fig)
  return paths
