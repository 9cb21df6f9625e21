"""The temperature study of the code suite as a figure: pass@1 and pass@10 against the
sampling temperature, one line per top-p.

Reads only the study's JSON (`scaling.evals.code.temperature_sweep`); nothing here loads a
model.
"""

from __future__ import annotations

import numpy as np

from scaling.analysis.plots import plt

PANELS = (("pass_at_1", "pass@1"), ("pass_at_10", "pass@10"))


def temperature_figure(study: dict, subset: str = "all"):
  """Two panels, pass@1 and pass@10, each a line per top-p with 95% intervals as bars."""
  fig, axes = plt.subplots(1, len(PANELS), figsize=(9.6, 4.0), sharey=True)
  highest = 0.0
  top_ps = sorted({s["top_p"] for s in study["settings"]}, reverse=True)
  for ax, (metric, label) in zip(axes, PANELS):
    for i, top_p in enumerate(top_ps):
      points = sorted((s["temperature"], *(s["subsets"][subset]["metrics"][metric][k]
                                           for k in ("mean", "ci_low", "ci_high")))
                      for s in study["settings"] if s["top_p"] == top_p
                      and metric in s["subsets"].get(subset, {}).get("metrics", {}))
      if not points:
        continue
      t, mean, low, high = map(np.asarray, zip(*points))
      highest = max(highest, float(high.max()))
      ax.errorbar(t, mean, yerr=[mean - low, high - mean], fmt="o-", color=f"C{i}",
                  capsize=3, markersize=4, label=f"top-p {top_p:g}")
    ax.set_xlabel("temperature (0 = greedy)")
    ax.set_title(f"{label}, {subset} ({study['samples']} samples per problem)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  # Shared axis from 0 up to the highest interval, so that small rates stay readable.
  axes[0].set_ylim(0, min(1.0, 1.15 * highest) or 1.0)
  axes[0].set_ylabel("fraction of held-out problems")
  fig.tight_layout()
  return fig
