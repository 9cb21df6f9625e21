"""The tokenizer-parity figure: each language's parity per tokenizer, and the context a
window of tokens holds per script."""

from __future__ import annotations

import numpy as np

from scaling.analysis.plots import label, plt

SCRIPTS_SHOWN = 10  # the scripts with the most languages get a colour each; the rest grey


def parity_figure(rows: list[dict], script_rows: list[dict], window: int):
  tokenizers = list(dict.fromkeys(r["tokenizer"] for r in rows))
  counts: dict[str, int] = {}
  for r in rows:
    if r["tokenizer"] == tokenizers[0]:
      counts[r["script"]] = counts.get(r["script"], 0) + 1
  scripts = sorted(counts, key=lambda s: (-counts[s], s))[:SCRIPTS_SHOWN]
  color = {s: f"C{i}" for i, s in enumerate(scripts)}

  fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), width_ratios=(1.1, 1))
  rng = np.random.default_rng(0)  # horizontal jitter only, so points do not hide each other
  for x, tok in enumerate(tokenizers):
    mine = [r for r in rows if r["tokenizer"] == tok]
    left.scatter(x + rng.uniform(-0.3, 0.3, len(mine)), [r["parity"] for r in mine], s=6,
                 alpha=0.6, color=[color.get(r["script"], "0.7") for r in mine])
  for s in scripts:
    left.scatter([], [], color=color[s], s=12, label=f"{s} ({counts[s]})")
  left.scatter([], [], color="0.7", s=12, label="other scripts")
  left.axhline(1, color="k", lw=0.8)
  left.set_yscale("log")
  left.set_xticks(range(len(tokenizers)), tokenizers, rotation=20, ha="right", fontsize=8)
  label(left, "", "parity (tokens / English tokens, same text)",
        "Tokenizer parity per language (UDHR, held-out articles)", legend_size=7, ncol=2)
  left.legend(fontsize=7, ncol=2, loc="upper right")  # placed, not searched for: 1,500 points

  width = 0.8 / len(tokenizers)
  for i, tok in enumerate(tokenizers):
    medians = {r["script"]: r["median_context_chars"] for r in script_rows
               if r["tokenizer"] == tok}
    right.bar(np.arange(len(scripts)) + i * width - 0.4 + width / 2,
              [medians.get(s, np.nan) for s in scripts], width, label=tok)
  right.set_xticks(range(len(scripts)), scripts, rotation=30, ha="right", fontsize=8)
  label(right, "", f"characters in a {window:,}-token window (median)",
        "Effective context per script", legend_size=7)
  fig.tight_layout()
  return fig
