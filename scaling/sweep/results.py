"""The results table: one row per trial, from its run directory, as JSON lines and CSV."""

from __future__ import annotations

import csv
import io
import json

from scaling import files
from scaling.errors import UserError
from scaling.sweep import status as status_lib
from scaling.sweep.spec import Trial


def _read(path: str) -> dict:
  try:
    return files.read_json(path, default={})
  except UserError:  # a damaged file of one trial leaves a hole, not a crash
    return {}


def row(trial: Trial, run_dir, state: dict) -> dict:
  """Config axes, sizes, costs, losses and every eval metric (with CI) of one trial."""
  summary = _read(run_dir.summary)
  evaluation = _read(run_dir.eval).get("tasks", {})
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


def collect(layout, trials: list[Trial]) -> list[dict]:
  """Writes `results.jsonl` and `results.csv` in the sweep directory; returns the rows."""
  states = status_lib.Status(layout.status).read()
  rows = [row(t, layout.run(t.name), states.get(t.name, {})) for t in trials]
  files.write_atomic(layout.results, "".join(json.dumps(r) + "\n" for r in rows))
  flat = [flatten(r) for r in rows]
  columns = list(dict.fromkeys(k for r in flat for k in r))
  out = io.StringIO()
  writer = csv.DictWriter(out, fieldnames=columns)
  writer.writeheader()
  writer.writerows(flat)
  files.write_atomic(layout.results_csv, out.getvalue())
  return rows


def flatten(r: dict) -> dict:
  """A CSV row: each metric as three columns, mean, `_lo` and `_hi` (95% interval)."""
  out = {k: v for k, v in r.items() if k not in ("metrics", "chance")}
  for name, (mean, low, high) in sorted(r["metrics"].items()):
    out[name], out[f"{name}_lo"], out[f"{name}_hi"] = mean, low, high
  return out


def read(path: str) -> list[dict]:
  """The rows of a results table (one `error:` line when it is damaged)."""
  return files.read_jsonl(path)
