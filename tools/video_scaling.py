"""What size buys a video DiT in space and in time: per-frame quality against temporal
consistency, per run of a video sweep, with the emergence test on each.

    python tools/video_scaling.py sweeps/video_cpu --out experiments/video_scaling

Reads each completed run's `eval.json` (suites `clips,continuation`), writes `table.md`,
`study.json` (rows and one emergence report per metric) and `vs_size.png` into OUT, and
prints the table and the verdicts.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from scaling.analysis import emergence, study_runs
from scaling.analysis.plots import label, plt
from scaling.numbers import ZERO_WIDTH, fmt, interval, zero_width

# (metric, what it sees, chance key): the [0, 1] metrics the emergence test reads.
SHARE_METRICS = (("class_accuracy", "frame"), ("lawful_motion", "time"),
                 ("identity_consistency", "time"))
OTHER_METRICS = ("frame_fd", "motion_residual", "clip_fd", "path_error")


def _point(metric: dict) -> list[float]:
  return [metric["mean"], metric["ci_low"], metric["ci_high"]]


def run_row(workdir: str) -> dict | None:
  """One run's size, seed and metrics (sampled clips, held-out ceiling, continuation);
  None when it has no eval with both suites."""
  paths = [os.path.join(workdir, f) for f in ("eval.json", "summary.json", "config.json")]
  if not all(os.path.exists(p) for p in paths):
    return None
  with open(paths[0]) as f:
    tasks = json.load(f)["tasks"]
  if "clips" not in tasks or "continuation" not in tasks:
    return None
  with open(paths[1]) as f:
    summary = json.load(f)
  with open(paths[2]) as f:
    cfg = json.load(f)
  [setting] = [s for s in tasks["clips"] if s != "real"]
  [continued] = tasks["continuation"].values()
  row = {"run": os.path.basename(os.path.normpath(workdir)), "seed": cfg["seed"],
         "params": summary["params"]["total"], "setting": setting,
         "chance": tasks["clips"][setting]["chance"],
         "path_error_chance": continued["chance"]["path_error"]}
  for name, metric in tasks["clips"][setting]["metrics"].items():
    row[name] = _point(metric)
  row["real"] = {name: _point(m) for name, m in tasks["clips"]["real"]["metrics"].items()}
  row["path_error"] = _point(continued["metrics"]["path_error"])
  row["continued_identity"] = _point(continued["metrics"]["identity_consistency"])
  return row


def table(rows: list[dict]) -> str:
  lines = ["| params | seed | class accuracy (frame) | frame FD | lawful motion | motion "
           "residual (px) | concentration | identity consistency | clip FD | continuation "
           "path error (px) |", "|---|---|---|---|---|---|---|---|---|---|"]
  cell = lambda r, k: interval(*r[k])
  for r in rows:
    lines.append(f"| {r['params']:,} | {r['seed']} | {cell(r, 'class_accuracy')} | "
                 f"{fmt(r['frame_fd'][0], 3)} | {cell(r, 'lawful_motion')} | "
                 f"{cell(r, 'motion_residual')} | {fmt(r['concentration'][0], 3)} | "
                 f"{cell(r, 'identity_consistency')} | "
                 f"{fmt(r['clip_fd'][0], 3)} | {cell(r, 'path_error')} |")
  real = rows[0]["real"]
  lines.append(f"| held-out clips | | {interval(*real['class_accuracy'])} | "
               f"{fmt(real['frame_fd'][0], 3)} | {interval(*real['lawful_motion'])} | "
               f"{interval(*real['motion_residual'])} | "
               f"{fmt(real['concentration'][0], 3)} | "
               f"{interval(*real['identity_consistency'])} | {fmt(real['clip_fd'][0], 3)} "
               f"| 0 |")
  chance = rows[0]["chance"]
  lines += ["", f"Chance: class accuracy {fmt(chance['class_accuracy'], 3)}, identity "
            f"consistency {fmt(chance['identity_consistency'], 3)} (frames labelled at "
            f"random), lawful motion 0; continuation path error when the last given frame is "
            f"held still: {fmt(np.mean([r['path_error_chance'] for r in rows]), 3)} px."]
  if any(zero_width(*r[k][1:]) for r in rows for k, _ in SHARE_METRICS):
    lines += ["", ZERO_WIDTH]
  return "\n".join(lines) + "\n"


def reports(rows: list[dict]) -> dict:
  """The emergence test on each [0, 1] metric against log parameters, all seeds pooled; a
  metric no run lifts above chance (no interval's low end above it) is reported as such,
  since a curve fitted to chance says nothing about emergence."""
  x = np.log10([r["params"] for r in rows])
  out = {}
  for metric, _ in SHARE_METRICS:
    chance = rows[0]["chance"].get(metric, 0.0)
    if not any(r[metric][1] > chance for r in rows):
      out[metric] = {"task": metric, "at_chance": True, "chance": chance,
                     "text": f"{metric}: at chance ({fmt(chance, 3)}) at every size: "
                             "nothing to test for emergence"}
      continue
    values = {metric: tuple(np.array([r[metric][i] for r in rows]) for i in range(3))}
    out[metric] = emergence.emergence_report(x, values, {metric: chance}, task=metric,
                                             bootstrap=200)
    out[metric]["text"] = emergence.format_report(out[metric])
  return out


def figure(rows: list[dict]):
  fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
  panels = ((axes[0], ("class_accuracy", "identity_consistency", "lawful_motion"),
             "share", "Frame and time, against size"),
            (axes[1], ("motion_residual", "path_error"), "pixels",
             "Motion: residual and continuation error"),
            (axes[2], ("frame_fd", "clip_fd"), "Frechet distance",
             "Distances to held-out clips"))
  for ax, metrics, ylabel, title in panels:
    for j, metric in enumerate(metrics):
      for i, seed in enumerate(sorted({r["seed"] for r in rows})):
        mine = [r for r in rows if r["seed"] == seed]
        x = [r["params"] for r in mine]
        y = [r[metric][0] for r in mine]
        err = [[r[metric][0] - r[metric][1] for r in mine],
               [r[metric][2] - r[metric][0] for r in mine]]
        ax.errorbar(x, y, yerr=err, fmt="os"[i % 2] + "-", color=f"C{j}", capsize=3,
                    markersize=4, alpha=0.8,
                    label=f"{metric} seed {seed}")
      if metric in rows[0]["real"]:
        ax.axhline(rows[0]["real"][metric][0], color=f"C{j}", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    if ylabel == "Frechet distance":
      ax.set_yscale("log")
    label(ax, "parameters", ylabel, title, legend_size=6)
  fig.tight_layout()
  return fig


def main(argv=None) -> int:
  parsed = study_runs.command_line(argv, __doc__, run_row,
                                   "has an eval.json with the clips and "
                                   "continuation suites (scaling eval --suite clips,continuation)")
  if parsed is None:
    return 2
  rows, out = parsed
  verdicts = reports(rows)
  study_runs.write(out, {"rows": rows, "emergence": verdicts}, table(rows), figure(rows))
  for report in verdicts.values():
    print("\n" + report["text"])
  return 0


if __name__ == "__main__":
  sys.exit(main())
