"""Figures of `scaling heads`: attention patterns of chosen heads on one repeated random
sequence, and every head's induction score and ablation drop."""

from __future__ import annotations

import math

import numpy as np

from scaling.analysis.plots import plt


def patterns(probs_NHLL: np.ndarray, pairs: list[tuple[int, int]], length: int):
  """One panel per (layer, head): query position down, key position across; the dashed
  line is where an induction head looks (the token after the first occurrence)."""
  cols = min(len(pairs), 4)
  rows = math.ceil(len(pairs) / cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
  for ax in axes.ravel()[len(pairs):]:
    ax.axis("off")
  j = np.arange(1, length)
  for ax, (layer, head) in zip(axes.ravel(), pairs):
    ax.imshow(probs_NHLL[layer, head], cmap="viridis", vmin=0, vmax=1)
    ax.plot(j + 1, length + j, "w--", lw=0.6, alpha=0.7)
    ax.set_title(f"layer {layer} head {head}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
  fig.suptitle("Attention on a repeated random sequence (dashed: induction stripe)")
  fig.tight_layout()
  return fig


def scores(result: dict):
  """Induction score per head and, for arithmetic, the exact-match drop when ablated."""
  panels = [("induction score", np.asarray(result["induction_score"]), "viridis")]
  if result.get("arithmetic_ablation"):
    panels.append(("exact-match drop when mean-ablated",
                   np.asarray(result["arithmetic_ablation"]["drop"]), "magma"))
  fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
  for ax, (title, values_NH, cmap) in zip(axes[0], panels):
    image = ax.imshow(values_NH, cmap=cmap, aspect="auto")
    fig.colorbar(image, ax=ax)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_xticks(range(values_NH.shape[1]))
    ax.set_yticks(range(values_NH.shape[0]))
    ax.set_title(title, fontsize=10)
  fig.tight_layout()
  return fig
