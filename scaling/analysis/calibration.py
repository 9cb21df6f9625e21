"""Whether a model knows when it is wrong, against size: the expected calibration error of
its greedy answers' probabilities against exact match (`scaling.evals.metrics.calibration`),
and its mean confidence beside its accuracy."""

from __future__ import annotations

import numpy as np

from scaling.analysis.plots import label, plt
from scaling.numbers import fmt, interval


def report(rows, task: str, subset: str) -> dict | None:
  """Per size: each seed's ECE with its 95% interval, their mean, and the mean confidence
  and exact match (confidence above accuracy is overconfidence). None without ECE."""
  name = f"{task}/{subset}"
  done = [r for r in rows if r["status"] == "completed" and f"{name}/ece" in r["metrics"]]
  if not done:
    return None
  sizes = []
  for params in sorted({r["params"] for r in done}):
    seeds = [r for r in done if r["params"] == params]
    m = lambda metric: [r["metrics"][f"{name}/{metric}"] for r in seeds]
    sizes.append({
        "size": seeds[0].get("size"), "params": params, "seeds": len(seeds),
        "ece": float(np.mean([v[0] for v in m("ece")])),
        "ece_per_seed": [v[:3] for v in m("ece")],
        "confidence": float(np.mean([v[0] for v in m("answer_confidence")])),
        "exact_match": float(np.mean([v[0] for v in m("exact_match")]))})
  return {"task": task, "subset": subset, "sizes": sizes}


def summary(block: dict) -> str:
  lines = [f"calibration of the greedy answer's probability ({block['task']} "
           f"{block['subset']}): ECE (mean over seeds; each seed's 95% interval), mean "
           "confidence against exact match"]
  for s in block["sizes"]:
    seeds = ", ".join(interval(*v) for v in s["ece_per_seed"])
    lines.append(f"  {s['size'] or fmt(s['params'])}: ECE {fmt(s['ece'], 3)} ({seeds}); "
                 f"confidence {fmt(s['confidence'], 3)} vs exact match "
                 f"{fmt(s['exact_match'], 3)}")
  return "\n".join(lines)


def figure(block: dict):
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
  for s in block["sizes"]:
    for mean, low, high in s["ece_per_seed"]:
      left.errorbar(s["params"], mean, yerr=[[mean - low], [high - mean]], fmt="o",
                    color="C0", alpha=0.5, markersize=4, capsize=2)
  params = [s["params"] for s in block["sizes"]]
  left.plot(params, [s["ece"] for s in block["sizes"]], color="C0", label="ECE, mean of seeds")
  left.set_xscale("log")
  label(left, "parameters", "expected calibration error",
        f"Calibration, {block['task']} {block['subset']}")
  right.plot(params, [s["confidence"] for s in block["sizes"]], "o-", label="mean confidence")
  right.plot(params, [s["exact_match"] for s in block["sizes"]], "s-", label="exact match")
  right.set_xscale("log")
  right.set_ylim(-0.02, 1.02)
  label(right, "parameters", "share", "Confidence beside accuracy (above it: overconfident)")
  fig.tight_layout()
  return fig
