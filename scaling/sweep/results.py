"""The results table, from the trials' run directories, as JSON lines and CSV.

One row per trial (`final` True: its last step), plus one per intermediate checkpoint it
scored (`final` False, with the held-out loss, tokens and FLOPs of that step). Cooldown
trunks are not rows: their branches are.
"""

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


def _metrics(evaluation: dict) -> tuple[dict, dict]:
  metrics, chance = {}, {}
  for task, subsets in evaluation.items():
    for subset, s in subsets.items():
      for metric, v in s["metrics"].items():
        metrics[f"{task}/{subset}/{metric}"] = [v["mean"], v["ci_low"], v["ci_high"]]
      for metric, c in s.get("chance", {}).items():
        chance[f"{task}/{subset}/{metric}"] = c
  return metrics, chance


def rows(trial: Trial, run_dir, state: dict) -> list[dict]:
  """The trial's final row, then one per intermediate checkpoint it scored."""
  final = row(trial, run_dir, state)
  out = [final]
  if not trial.eval_steps or final["status"] != "completed":
    return out
  eval_loss = {r["step"]: r.get("eval_loss") for r in files.read_jsonl(run_dir.metrics)}
  per_unit = (final["training_flops"] or 0) / max(final["step"] or 1, 1)
  units = (final["tokens"] or final["samples"] or 0) / max(final["step"] or 1, 1)
  for step in trial.eval_steps:
    evaluation = _read(run_dir.eval_at(step)).get("tasks")
    if evaluation is None:
      continue
    metrics, chance = _metrics(evaluation)
    unit_key = "tokens" if final["tokens"] is not None else "samples"
    out.append({**final, "step": step, "final": False, "final_eval_loss": eval_loss.get(step),
                "final_train_loss": None, unit_key: round(units * step),
                "training_flops": per_unit * step, "metrics": metrics, "chance": chance})
  return out


def row(trial: Trial, run_dir, state: dict) -> dict:
  """Config axes, sizes, costs, losses and every eval metric (with CI) of one trial."""
  summary = _read(run_dir.summary)
  evaluation = _read(run_dir.eval).get("tasks", {})
  params = summary.get("params") or {}
  metrics, chance = _metrics(evaluation)
  out = {
      "trial": trial.name, "kind": trial.cfg.model.kind, "size": trial.size,
      "seed": trial.seed,
      "learning_rate": trial.cfg.train.learning_rate, "flop_budget": trial.flop_budget,
      "cooldown": trial.cooldown, "parametrization": trial.cfg.model.get("parametrization"),
      "step": summary.get("step"), "final": True,
      "status": state.get("state", "pending"), "error": state.get("error"),
      "d_model": trial.cfg.model.d_model, "n_layers": trial.cfg.model.n_layers,
      "params": params.get("total", trial.params),
      "non_embedding_params": params.get("non_embedding"),
      "tokens": summary.get("tokens_seen"), "samples": summary.get("samples_seen"),
      "training_flops": summary.get("training_flops"),
      "final_train_loss": summary.get("final_train_loss"),
      "final_eval_loss": summary.get("final_eval_loss"),
      "wall_time_s": state.get("wall_time_s", summary.get("wall_time_s")),
      "metrics": metrics, "chance": chance,
  }
  return out


def collect(layout, trials: list[Trial]) -> list[dict]:
  """Writes `results.jsonl` and `results.csv` in the sweep directory; returns the rows."""
  states = status_lib.Status(layout.status).read()
  table = [r for t in trials if t.role != "trunk"
           for r in rows(t, layout.run(t.name), states.get(t.name, {}))]
  files.write_atomic(layout.results, "".join(json.dumps(r) + "\n" for r in table))
  flat = [flatten(r) for r in table]
  columns = list(dict.fromkeys(k for r in flat for k in r))
  out = io.StringIO()
  writer = csv.DictWriter(out, fieldnames=columns)
  writer.writeheader()
  writer.writerows(flat)
  files.write_atomic(layout.results_csv, out.getvalue())
  return table


def flatten(r: dict) -> dict:
  """A CSV row: each metric as three columns, mean, `_lo` and `_hi` (95% interval)."""
  out = {k: v for k, v in r.items() if k not in ("metrics", "chance")}
  for name, (mean, low, high) in sorted(r["metrics"].items()):
    out[name], out[f"{name}_lo"], out[f"{name}_hi"] = mean, low, high
  return out


def read(path: str) -> list[dict]:
  """The rows of a results table (one `error:` line when it is damaged)."""
  return files.read_jsonl(path)
