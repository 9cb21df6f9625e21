"""Whether a model knows when it is wrong, against size: the calibration of its greedy
answers and its commitment to a forced wrong digit, per run of a sweep.

    python tools/knowing_when_wrong.py sweeps/arithmetic_cpu --out experiments/knowing_when_wrong

Reads each completed run's `eval.json` (written by `scaling eval --suite
arithmetic,commitment`), writes `table.md`, `study.json` and `vs_size.png` into OUT.
"""

from __future__ import annotations

import json
import os
import sys

from scaling.analysis import study_runs
from scaling.analysis.plots import label, plt
from scaling.numbers import ZERO_WIDTH, fmt, interval, zero_width

TASK, SUBSET = "arithmetic", "+3d"


def _point(metric: dict) -> list[float]:
  return [metric["mean"], metric["ci_low"], metric["ci_high"]]


def run_row(workdir: str) -> dict | None:
  """One run's size, seed, exact match, ECE (with the calibrated model's 95th percentile)
  and commitment shares; None when its eval lacks the suites."""
  paths = [os.path.join(workdir, f) for f in ("eval.json", "summary.json", "config.json")]
  if not all(os.path.exists(p) for p in paths):
    return None
  with open(paths[0]) as f:
    tasks = json.load(f)["tasks"]
  if SUBSET not in tasks.get(TASK, {}) or "commitment_consistent" not in tasks:
    return None
  with open(os.path.join(workdir, "summary.json")) as f:
    summary = json.load(f)
  with open(os.path.join(workdir, "config.json")) as f:
    cfg = json.load(f)
  arithmetic = tasks[TASK][SUBSET]
  m = arithmetic["metrics"]
  return {"run": os.path.basename(workdir), "seed": cfg["seed"],
          "params": summary["params"]["total"],
          "exact_match": _point(m["exact_match"]), "confidence": _point(m["answer_confidence"]),
          "ece": _point(m["ece"]), "calibrated_high": arithmetic["calibration"]["calibrated_high"],
          "consistent": _point(tasks["commitment_consistent"]["all"]["metrics"]["exact_match"]),
          "recovered": _point(tasks["commitment_recovered"]["all"]["metrics"]["exact_match"]),
          "n": arithmetic["n"]}


def table(rows: list[dict]) -> str:
  lines = ["| params | seed | exact match | confidence | ECE | calibrated model's 95th pct. "
           "| consistent with the wrong digit | recovered the true sum |",
           "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r['params']:,} | {r['seed']} | {interval(*r['exact_match'])} | "
                 f"{fmt(r['confidence'][0], 3)} | {interval(*r['ece'])} | "
                 f"{fmt(r['calibrated_high'], 3)} | {interval(*r['consistent'])} | "
                 f"{interval(*r['recovered'])} |")
  if any(zero_width(*r[k][1:]) for r in rows
         for k in ("exact_match", "ece", "consistent", "recovered")):
    lines += ["", ZERO_WIDTH]
  return "\n".join(lines) + "\n"


def figure(rows: list[dict]):
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
  for i, seed in enumerate(sorted({r["seed"] for r in rows})):
    mine = [r for r in rows if r["seed"] == seed]
    x = [r["params"] for r in mine]
    for ax, key, marker in ((left, "ece", "o-"), (right, "consistent", "o-"),
                            (right, "recovered", "s--")):
      y = [r[key][0] for r in mine]
      err = [[r[key][0] - r[key][1] for r in mine], [r[key][2] - r[key][0] for r in mine]]
      ax.errorbar(x, y, yerr=err, fmt=marker, color=f"C{i}", capsize=3, markersize=4,
                  label=f"{key}, seed {seed}" if ax is right else f"seed {seed}")
    left.plot(x, [r["calibrated_high"] for r in mine], ":", color=f"C{i}",
              label=f"calibrated model's 95th pct., seed {seed}")
  for ax in (left, right):
    ax.set_xscale("log")
  label(left, "parameters", "expected calibration error",
        f"Calibration of the greedy answer ({TASK} {SUBSET})", legend_size=7)
  label(right, "parameters", "share of items",
        "After a forced wrong first digit, the rest is...", legend_size=7)
  fig.tight_layout()
  return fig


def main(argv=None) -> int:
  parsed = study_runs.command_line(argv, __doc__, run_row,
                                   "has an eval.json with the arithmetic and "
                                   "commitment suites (scaling eval --suite arithmetic,commitment)")
  if parsed is None:
    return 2
  rows, out = parsed
  study_runs.write(out, {"rows": rows}, table(rows), figure(rows))
  return 0


if __name__ == "__main__":
  sys.exit(main())
