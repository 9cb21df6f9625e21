"""Spoken counting against size: does the audio LM say the next number, and how likely does
it find the true one, per run of an audio sweep, with the emergence test on both.

    python tools/audio_counting.py sweeps/audio_cpu --out experiments/audio_counting

Reads each completed run's `eval.json` (suite `counting`), writes `table.md`, `study.json`
(rows and the emergence report: exact match against the log-probability of the true
continuation) and `vs_size.png` into OUT, and prints the table and the verdict.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
from matplotlib.ticker import NullFormatter

from scaling.analysis import emergence, study_runs
from scaling.analysis.plots import label, plt
from scaling.numbers import ZERO_WIDTH, fmt, interval, zero_width


def _point(metric: dict) -> list[float]:
  return [metric["mean"], metric["ci_low"], metric["ci_high"]]


def run_row(workdir: str) -> dict | None:
  """One run's size, seed, exact match, log-probability and the codec's ceiling; None
  when it has no counting eval."""
  paths = [os.path.join(workdir, f) for f in ("eval.json", "summary.json", "config.json")]
  if not all(os.path.exists(p) for p in paths):
    return None
  with open(paths[0]) as f:
    tasks = json.load(f)["tasks"]
  if "counting" not in tasks:
    return None
  with open(paths[1]) as f:
    summary = json.load(f)
  with open(paths[2]) as f:
    cfg = json.load(f)
  model, codec = tasks["counting"]["model"], tasks["counting"]["codec"]
  return {"run": os.path.basename(os.path.normpath(workdir)), "name": cfg["name"],
          "seed": cfg["seed"], "params": summary["params"]["total"], "n": model["n"],
          "exact_match": _point(model["metrics"]["exact_match"]),
          "log_prob": _point(model["metrics"]["log_prob"]),
          "ceiling": _point(codec["metrics"]["exact_match"]),
          "chance": model["chance"]["exact_match"],
          "eval_loss": summary.get("final_eval_loss"), "wall_time_s": summary.get("wall_time_s")}


def table(rows: list[dict]) -> str:
  lines = ["| model | params | seed | exact match (says the next number) | log-prob per token "
           "of the true continuation | held-out loss |", "|---|---|---|---|---|---|"]
  for r in rows:
    loss = fmt(r["eval_loss"], 3) if r["eval_loss"] is not None else "-"
    lines.append(f"| {r['name']} | {r['params']:,} | {r['seed']} | "
                 f"{interval(*r['exact_match'])} | {interval(*r['log_prob'])} | {loss} |")
  ceiling = rows[0]["ceiling"]
  lines += ["", f"Chance (a number word at random): {fmt(rows[0]['chance'], 3)}. Ceiling (the "
            f"recogniser on the codec's decoding of the true continuation): "
            f"{interval(*ceiling)}. {rows[0]['n']} held-out utterances per run; intervals are "
            "95% bootstrap intervals over them."]
  if any(zero_width(*r["exact_match"][1:]) for r in rows):
    lines += ["", ZERO_WIDTH]
  return "\n".join(lines) + "\n"


def report(rows: list[dict]) -> dict:
  """The emergence test on exact match and the log-probability against log parameters,
  all seeds pooled; exact match at chance at every size is reported as such."""
  x = np.log10([r["params"] for r in rows])
  values = {m: tuple(np.array([r[m][i] for r in rows]) for i in range(3))
            for m in ("exact_match", "log_prob")}
  chance = rows[0]["chance"]
  out = emergence.emergence_report(x, values, {"exact_match": chance},
                                   exact_metric="exact_match", continuous_metric="log_prob",
                                   ceiling={"log_prob": 0.0}, task="spoken counting",
                                   bootstrap=200)
  out["at_chance"] = not any(r["exact_match"][1] > chance for r in rows)
  out["text"] = emergence.format_report(out)
  if out["at_chance"]:
    out["text"] += ("\nexact match: no run's interval lies above chance "
                    f"({fmt(chance, 3)}): nothing to test for emergence on it")
  return out


def figure(rows: list[dict]):
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  for ax, metric, ylabel in ((axes[0], "exact_match", "exact match"),
                             (axes[1], "log_prob", "log-prob per token")):
    for i, seed in enumerate(sorted({r["seed"] for r in rows})):
      mine = [r for r in rows if r["seed"] == seed]
      y = np.array([r[metric] for r in mine])
      ax.errorbar([r["params"] for r in mine], y[:, 0],
                  yerr=[y[:, 0] - y[:, 1], y[:, 2] - y[:, 0]], fmt="os"[i % 2] + "-",
                  capsize=3, markersize=4, label=f"seed {seed}")
    if metric == "exact_match":
      ax.axhline(rows[0]["chance"], color="grey", linestyle=":", label="chance")
      ax.axhline(rows[0]["ceiling"][0], color="black", linestyle="--",
                 label="ceiling (codec + recogniser)")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # 2x10^4, 3x10^4 ... overlap
    label(ax, "parameters", ylabel, f"Spoken counting: {ylabel}", legend_size=7)
  fig.tight_layout()
  return fig


def main(argv=None) -> int:
  parsed = study_runs.command_line(argv, __doc__, run_row,
                                   "has an eval.json with the counting suite "
                                   "(scaling eval --suite counting)")
  if parsed is None:
    return 2
  rows, out = parsed
  verdict = report(rows)
  study_runs.write(out, {"rows": rows, "emergence": verdict}, table(rows), figure(rows))
  print("\n" + verdict["text"])
  return 0


if __name__ == "__main__":
  sys.exit(main())
