"""The results table: one row per trial, from its run directory, as JSON lines and CSV."""

from __future__ import annotations

import csv
import json
import os

from scaling.sweep import status as status_lib
from scaling.sweep.spec import Trial


def _read(path: str) -> dict:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


def row(trial: Trial, run_dir: str, state: dict) -> dict:
  """Config axes, sizes, costs, losses and every eval metric (with CI) of one trial."""
  summary = _read(os.path.join(run_dir, "summary.json"))
  evaluation = _read(os.path.join(run_dir, "eval.json")).get("tasks", {})
  params = summary.get("params") or {}
  out = {
      "trial": trial.name, "size": trial.size, "seed": trial.seed,
      "status": state.get("state", "pending"), "error": state.get("error"),
      "d_model": trial.cfg.model.d_model, "n_layers": trial.cfg.model.n_layers,
      "params": params.get("total", trial.params),
      "non_embedding_params": params.get("non_embedding"),
      "tokens": summary.get("tokens_seen"), "samples": summary.get("samples_seen"),
      "training_flops": summary.get("training_flops"),
      "final_train_loss": summary.get("final_train_loss"),
      "final_eval_loss": summary.get("final_eval_loss"),
      "wall_time_s": state.get("wall_time_s", summary.get("wall_time_s")),
      "metrics": {}, "chance": {},
  }
  for task, subsets in evaluation.items():
    for subset, s in subsets.items():
      for metric, v in s["metrics"].items():
        out["metrics"][f"{task}/{subset}/{metric}"] = [v["mean"], v["ci_low"], v["ci_high"]]
      for metric, c in s.get("chance", {}).items():
        out["chance"][f"{task}/{subset}/{metric}"] = c
  return out


def collect(directory: str, trials: list[Trial]) -> list[dict]:
  """Writes `results.jsonl` and `results.csv` in the sweep directory; returns the rows."""
  states = status_lib.Status(directory).read()
  rows = [row(t, os.path.join(directory, "runs", t.name), states.get(t.name, {}))
          for t in trials]
  with open(os.path.join(directory, "results.jsonl"), "w") as f:
    for r in rows:
      f.write(json.dumps(r) + "\n")
  flat = [flatten(r) for r in rows]
  columns = list(dict.fromkeys(k for r in flat for k in r))
  with open(os.path.join(directory, "results.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    writer.writerows(flat)
  return rows


def flatten(r: dict) -> dict:
  """A CSV row: each metric as three columns, mean, `_lo` and `_hi` (95% interval)."""
  out = {k: v for k, v in r.items() if k not in ("metrics", "chance")}
  for name, (mean, low, high) in sorted(r["metrics"].items()):
    out[name], out[f"{name}_lo"], out[f"{name}_hi"] = mean, low, high
  return out


def read(directory: str) -> list[dict]:
  path = os.path.join(directory, "results.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]
