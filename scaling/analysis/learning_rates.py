"""Learning-rate grids in a sweep: the best learning rate per size by held-out loss (or by
another metric where lower is better, e.g. an image model's FD), how far the optimum moves
with width (it should not under muP), and the loss-vs-learning-rate figure with one line
per width."""

from __future__ import annotations

import math

import numpy as np

from scaling.analysis import checkpoints, plots
from scaling.numbers import fmt
from scaling.analysis.plots import plt


def _losses(rows, metric: str | None = None) -> dict[str, dict[float, list[float]]]:
  """{size: {learning rate: final held-out losses (or `metric`) over seeds}} of completed
  final rows."""
  out: dict = {}
  for r in checkpoints.completed(rows):
    lr = r.get("learning_rate")
    loss = (r.get("final_eval_loss") if metric is None
            else (r["metrics"].get(metric) or (None,))[0])
    if (checkpoints.is_final(r) and isinstance(loss, (int, float)) and math.isfinite(loss)
        and lr is not None):
      out.setdefault(r["size"], {}).setdefault(float(lr), []).append(loss)
  return out


def has_grid(rows) -> bool:
  """True when some size was trained at more than one learning rate."""
  return any(len(by_lr) > 1 for by_lr in _losses(rows).values())


def best(rows, metric: str | None = None) -> dict[str, float]:
  """Each size's learning rate of lowest mean held-out loss (or `metric`)."""
  return {size: min(by_lr, key=lambda lr: np.mean(by_lr[lr]))
          for size, by_lr in _losses(rows, metric).items()}


def at_best(rows, metric: str | None = None) -> list[dict]:
  """The rows trained at their size's best learning rate (what size fits should use)."""
  chosen = best(rows, metric)
  return [r for r in rows if r.get("learning_rate") == chosen.get(r["size"])]


def report(rows, metric: str | None = None) -> dict:
  """Per size (by width): its best rate and mean loss (or `metric`) at each rate; and the
  optimum's move from the narrowest to the widest model, in grid steps and as a factor."""
  losses, chosen = _losses(rows, metric), best(rows, metric)
  width = {r["size"]: r["d_model"] for r in rows}
  grid = sorted({lr for by_lr in losses.values() for lr in by_lr})
  sizes = sorted(losses, key=lambda s: width[s])
  per_size = {s: {"d_model": width[s], "best_learning_rate": chosen[s],
                  "mean_loss": {str(lr): float(np.mean(v)) for lr, v in sorted(losses[s].items())}}
              for s in sizes}
  narrow, wide = chosen[sizes[0]], chosen[sizes[-1]]
  shift = grid.index(wide) - grid.index(narrow)
  by = "" if metric is None else f" (by {metric})"
  text = (f"best learning rate{by} {fmt(narrow)} at width {width[sizes[0]]} and {fmt(wide)} "
          f"at width {width[sizes[-1]]} ({'+' if shift >= 0 else ''}{shift} grid points, "
          f"x{fmt(wide / narrow)})")
  return {"grid": grid, "sizes": per_size, "shift_grid_points": shift,
          "shift_factor": wide / narrow, "metric": metric or "final_eval_loss", "text": text}


def figure(rows, metric: str | None = None):
  """One line per width: mean loss (or `metric`) over seeds at each rate (bars: min to
  max), optimum marked."""
  losses, chosen = _losses(rows, metric), best(rows, metric)
  name = metric or "held-out loss"
  width = {r["size"]: r["d_model"] for r in rows}
  fig, ax = plt.subplots(figsize=(6.4, 4.4))
  for i, size in enumerate(sorted(losses, key=lambda s: width[s])):
    lrs = sorted(losses[size])
    mean = np.array([np.mean(losses[size][lr]) for lr in lrs])
    low = mean - [min(losses[size][lr]) for lr in lrs]
    high = np.array([max(losses[size][lr]) for lr in lrs]) - mean
    ax.errorbar(lrs, mean, yerr=[low, high], fmt="-o", color=f"C{i}", markersize=4,
                capsize=2, label=f"width {width[size]}")
    ax.plot([chosen[size]], [np.mean(losses[size][chosen[size]])], "*", color=f"C{i}",
            markersize=14)
  ax.set_xscale("log", base=2)
  ax.set_yscale("log")
  plots.label(ax, "peak learning rate", name, f"{name} vs learning rate")
  fig.tight_layout()
  return fig
