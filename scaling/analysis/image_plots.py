"""Figures for image models, from a sweep's results table: sample quality against model size,
and against the sampler's settings (steps, DDIM vs DDPM, guidance).

The table's image metrics are named `image_quality/<setting>/<metric>`, a diffusion setting
being `<sampler><steps>/g<guidance>` and a GAN's `generator` (see
`scaling.evals.image_quality`). Nothing here reads a model or a run directory.
"""

from __future__ import annotations

import re

import numpy as np

from scaling.analysis import plots
from scaling.analysis.plots import plt

SUBSET = re.compile(r"^(ddim|ddpm)(\d+)(?:-eta[0-9.]+)?/g([0-9.]+)$")
METRICS = {
    "fd": "Fréchet distance (classifier features)",
    "kid": "kernel distance (KID)",
    "class_accuracy": "class accuracy of conditional samples",
    "precision": "precision (k-NN manifold of real features)",
    "recall": "recall (k-NN manifold of sample features)",
    "class_coverage": "share of classes drawn at >= half their real share",
}


def subsets(rows) -> list[str]:
  """Every scored subset of `image_quality` (a diffusion setting, or a GAN's `generator`)."""
  out = {}
  for r in rows:
    for key in r["metrics"]:
      task, _, rest = key.partition("/")
      if task == "image_quality":
        out[rest.rpartition("/")[0]] = None
  return list(out)


def settings(rows) -> dict[str, tuple[str, int, float]]:
  """Every scored subset of `image_quality` as (sampler, steps, guidance)."""
  out = {}
  for r in rows:
    for key in r["metrics"]:
      task, _, rest = key.partition("/")
      subset = rest.rpartition("/")[0]
      match = SUBSET.match(subset)
      if task == "image_quality" and match:
        out[subset] = (match[1], int(match[2]), float(match[3]))
  return out


def _done(rows):
  return sorted((r for r in rows if r["status"] == "completed"), key=lambda r: r["params"])


def _by_size(rows):
  """{params: [rows of its seeds]}, smallest first."""
  sizes: dict[int, list] = {}
  for r in _done(rows):
    sizes.setdefault(r["params"], []).append(r)
  return sizes


def _curve(trials, x_by_subset: dict[str, float], metric: str) -> list[tuple[float, float]]:
  """(x, metric averaged over the seeds) for each subset every seed was scored on."""
  return sorted((x, np.mean([r["metrics"][f"image_quality/{s}/{metric}"][0] for r in trials]))
                for s, x in x_by_subset.items()
                if all(f"image_quality/{s}/{metric}" in r["metrics"] for r in trials))


def quality_vs_params(rows, subset: str, metric: str):
  """The metric of one setting against model size; seeds as points, mean as line."""
  rows = _done(rows)
  name = f"image_quality/{subset}/{metric}"
  fig, ax = plt.subplots(figsize=(6.4, 4.4))
  points = [(r["params"], *r["metrics"][name]) for r in rows if name in r["metrics"]]
  if points:
    n, mean, low, high = map(np.asarray, zip(*points))
    ax.errorbar(n, mean, yerr=[mean - low, high - mean], fmt="o", color="C0", alpha=0.6,
                markersize=4, capsize=2, label="trials")
    sizes = np.unique(n)
    ax.plot(sizes, [mean[n == s].mean() for s in sizes], "-", color="C0", label="mean over seeds")
  chance = [r["chance"][name] for r in rows if name in r.get("chance", {})]
  if chance:
    label = "chance (1 / classes)" if metric == "class_accuracy" else "untrained model"
    ax.axhline(np.mean(chance), color="C3", linestyle=":", label=label)
  floor = [r["metrics"][f"real_data/test_vs_train/{metric}"][0] for r in rows
           if f"real_data/test_vs_train/{metric}" in r["metrics"]]
  if floor:
    ax.axhline(np.mean(floor), color="C2", linestyle="--", label="real held-out vs real train")
  ax.set_xscale("log")
  if metric == "fd":
    ax.set_yscale("log")
  name = METRICS.get(metric, metric)
  plots.label(ax, "parameters", name, f"{name} vs model size ({subset})")
  fig.tight_layout()
  return fig


def quality_vs_steps(rows, guidance: float, metric: str = "fd"):
  """The metric against sampling steps, one line per model size and sampler (mean over seeds)."""
  found = {s: v for s, v in settings(rows).items() if v[2] == guidance}
  fig, ax = plt.subplots(figsize=(6.4, 4.4))
  for i, (params, trials) in enumerate(_by_size(rows).items()):
    for method, style in (("ddim", "-o"), ("ddpm", "--s")):
      points = _curve(trials, {s: steps for s, (m, steps, _) in found.items() if m == method},
                      metric)
      if points:
        x, y = zip(*points)
        ax.plot(x, y, style, color=f"C{i}", markersize=4,
                label=f"{params:,} params, {method.upper()}")
  ax.set_xscale("log")
  if metric == "fd":
    ax.set_yscale("log")
  plots.label(ax, "sampling steps", METRICS.get(metric, metric),
              f"sample quality vs sampling steps (guidance {guidance:g})", legend_size=7, ncol=2)
  fig.tight_layout()
  return fig


def quality_vs_guidance(rows, method: str, steps: int):
  """FD and class accuracy against the guidance scale, one line per model size."""
  found = {s: v[2] for s, v in settings(rows).items() if v[:2] == (method, steps)}
  fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
  for ax, metric in zip(axes, ("fd", "class_accuracy")):
    for i, (params, trials) in enumerate(_by_size(rows).items()):
      points = _curve(trials, found, metric)
      if points:
        x, y = zip(*points)
        ax.plot(x, y, "-o", color=f"C{i}", markersize=4, label=f"{params:,} params")
    if metric == "fd":
      ax.set_yscale("log")
    ax.set_xlabel("guidance scale (0 unconditional, 1 conditional)")
    ax.set_ylabel(METRICS[metric])
    ax.grid(alpha=0.3, which="both")
  axes[0].legend(fontsize=7)
  fig.suptitle(f"sample quality vs guidance ({method.upper()}, {steps} steps)")
  fig.tight_layout()
  return fig
