"""`scaling eval`: score a trained run on benchmark suites and task files, write eval.json."""

from __future__ import annotations

import os

from scaling import runs
from scaling.config import UserError
from scaling.evals import report, scoring, suites


def evaluate(workdir: str, *, suite_names: list[str] | None, task_files: list[str],
             n_per_subset: int | None = None, batch: int = 128, progress: bool = True,
             samplers: str | None = None, steps: str | None = None,
             guidance: str | None = None) -> dict:
  """Scores the run's latest checkpoint; writes `<workdir>/eval.json` and returns it.

  Language models are scored on `suite_names` (None: arithmetic, unless `task_files` are
  given) and `task_files`, with `n_per_subset` items per generated subset (default 500).
  Image models are scored on sample quality at the sampler settings `samplers`, `steps`
  and `guidance` describe (comma-separated, see `image_quality.settings_grid`), with
  `n_per_subset` images per class (default 100).
  """
  run = runs.load(workdir)
  if suite_names is None:
    suite_names = ["images"] if run.kind == "dit" else [] if task_files else ["arithmetic"]
  if run.kind == "dit":
    return _evaluate_images(run, suite_names, task_files, n_per_subset, batch, progress,
                            samplers, steps, guidance)
  if samplers or steps or guidance:
    raise UserError("--sampler, --steps and --guidance are for image models")
  if "images" in suite_names:
    raise UserError(f"the images suite is for image models; {workdir} holds a language model")
  n_per_subset = n_per_subset or 500
  items = suites.build(suite_names, run.cfg.data, n_per_subset=n_per_subset,
                       task_files=task_files)
  outputs = scoring.score(run.model, run.tokenizer, items, batch=batch, progress=progress)
  result = report.aggregate(items, outputs)
  meta = {"workdir": os.path.abspath(workdir), "step": run.step, "suites": suite_names,
          "task_files": task_files, "n_per_subset": n_per_subset}
  report.write(os.path.join(workdir, "eval.json"), result, meta)
  return result


def _evaluate_images(run, suite_names, task_files, n_per_class, batch, progress, samplers,
                     steps, guidance) -> dict:
  from scaling.evals import image_quality
  from scaling.evals.images import classifier_for
  other = [s for s in suite_names if s != "images"]
  if other or task_files:
    raise UserError(f"{run.workdir} holds an image model: its suite is 'images', "
                    f"not {', '.join(other or task_files)}")
  settings = image_quality.settings_grid(run.cfg.diffusion, samplers=samplers, steps=steps,
                                         guidance=guidance)
  n_per_class = n_per_class or 100
  classifier = classifier_for(run.cfg.data)
  result = image_quality.evaluate(run, settings, classifier, n_per_class=n_per_class,
                                  batch=batch, progress=progress)
  image_quality.write(run, result, settings, n_per_class, classifier.accuracy,
                      {"sampler": samplers, "steps": steps, "guidance": guidance})
  return result
