"""When a trained image model counts as collapsed, and the share of such runs per size.

A run is **collapsed** when its samples miss much of the data distribution, by either of
two views of the scored setting (`scaling.evals.manifold`):

  class coverage < MIN_CLASS_COVERAGE   fewer than half the classes get at least half their
                                        real share of the samples (as the classifier
                                        labels them): whole classes are never drawn
  recall < MIN_RECALL                   fewer than MIN_RECALL of the held-out real images
                                        lie inside the samples' k-NN manifold: the samples
                                        of each class are a few near-copies

and **diverged** when training stopped on a non-finite loss. Held-out digits against
training digits score class coverage 1.0 and recall 0.92 at the study sizes, so both
thresholds are far below what a model that learned the data reaches.
"""

from __future__ import annotations

import numpy as np

from scaling.numbers import fmt

MIN_CLASS_COVERAGE = 0.5
MIN_RECALL = 0.1


def verdict(row: dict, subset: str) -> str:
  """'diverged', 'collapsed', 'ok', or '-' for a row (of results.jsonl) not scored."""
  if row.get("status") == "diverged":
    return "diverged"
  m = row.get("metrics", {})
  coverage = m.get(f"image_quality/{subset}/class_coverage")
  recall = m.get(f"image_quality/{subset}/recall")
  if coverage is None or recall is None:
    return "-"
  return "collapsed" if coverage[0] < MIN_CLASS_COVERAGE or recall[0] < MIN_RECALL else "ok"


def shares(rows, subset: str) -> dict[str, dict]:
  """Per size: trials, and how many collapsed or diverged (rows of one sweep)."""
  out: dict[str, dict] = {}
  for r in rows:
    v = verdict(r, subset)
    if v == "-":
      continue
    entry = out.setdefault(r["size"], {"params": r["params"], "trials": 0, "collapsed": 0,
                                       "diverged": 0})
    entry["trials"] += 1
    if v != "ok":
      entry[v] += 1
  return out


SUMMARY = ("fd", "kid", "class_accuracy", "precision", "recall", "class_coverage", "coverage")


def summary_table(sweeps: dict[str, tuple[list[dict], str]]) -> str:
  """A markdown table of several sweeps side by side: per sweep, size and learning rate,
  the median of each quality metric over the trials (seeds) at the headline setting, and
  how many of them collapsed or diverged. `sweeps` maps a label to (final rows, subset)."""
  head = ["family", "size", "params", "lr", "trials", *SUMMARY, "collapsed", "diverged"]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for label, (rows, subset) in sweeps.items():
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
      groups.setdefault((r["params"], r["size"], r.get("learning_rate")), []).append(r)
    for (params, size, lr), trials in sorted(groups.items(), key=lambda kv: (kv[0][0],
                                                                            kv[0][2] or 0)):
      verdicts = [verdict(r, subset) for r in trials]
      cells = [label, size, f"{params:,}", fmt(lr), str(len(trials))]
      for metric in SUMMARY:
        values = [r["metrics"][f"image_quality/{subset}/{metric}"][0] for r in trials
                  if f"image_quality/{subset}/{metric}" in r.get("metrics", {})]
        cells.append(fmt(np.median(values), 3) if values else "-")
      cells += [str(verdicts.count("collapsed")), str(verdicts.count("diverged"))]
      lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)
