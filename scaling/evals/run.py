"""`scaling eval`: score a trained run on benchmark suites and task files, write eval.json."""

from __future__ import annotations

import os

from scaling import runs
from scaling.evals import report, scoring, suites


def evaluate(workdir: str, *, suite_names: list[str], task_files: list[str],
             n_per_subset: int = 500, batch: int = 128, progress: bool = True) -> dict:
  """Scores the run's latest checkpoint; writes `<workdir>/eval.json` and returns it."""
  run = runs.load(workdir)
  items = suites.build(suite_names, run.cfg.data, n_per_subset=n_per_subset,
                       task_files=task_files)
  outputs = scoring.score(run.model, run.tokenizer, items, batch=batch, progress=progress)
  result = report.aggregate(items, outputs)
  meta = {"workdir": os.path.abspath(workdir), "step": run.step, "suites": suite_names,
          "task_files": task_files, "n_per_subset": n_per_subset}
  report.write(os.path.join(workdir, "eval.json"), result, meta)
  return result
