"""Evaluating a trained language model: greedy and teacher-forced scores on the text suites
(`scaling.evals.suites`) and task files, and sampled programs run on the code suite."""

from __future__ import annotations

import os

from scaling.errors import RequestError
from scaling.evals import aggregate, code, scoring, suites
from scaling.evals.request import EvalRequest

SUITES = suites.SUITES  # the first is the default
DEFAULT_N = 500  # items per subset when -n is not given
IMAGE_SETTINGS = ("samplers", "steps", "guidance")


def _code_settings(request: EvalRequest) -> code.Settings:
  return code.Settings(samples=request.samples, temperature=request.temperature,
                       top_p=request.top_p, seed=request.seed)


def check(cfg, request: EvalRequest) -> None:
  """Checks a request before any training or loading (sweeps call it first)."""
  del cfg  # every language model takes every suite
  request.check()
  request.unset(IMAGE_SETTINGS, "is for image models, not a language model")
  for name in request.suites or ():
    if name not in SUITES:
      raise RequestError("suites", f"unknown suite {name!r} for a language model; known: "
                         f"{', '.join(SUITES)}")
  for path in request.task_files:
    if not os.path.exists(path):
      raise RequestError("task_files", f"task file not found: {path}")
  try:
    _code_settings(request).sampling
  except ValueError as e:
    raise RequestError("temperature", str(e)) from None


def evaluate(run, request: EvalRequest, *, progress: bool = True) -> dict:
  """Scores `run`; writes eval.json and returns its `tasks` part."""
  check(run.cfg, request)
  names = list(request.suites if request.suites is not None
               else () if request.task_files else ("arithmetic",))
  n = request.n or DEFAULT_N
  items = suites.build([s for s in names if s != "code"], run.cfg.data, n_per_subset=n,
                       task_files=list(request.task_files))
  result = {}
  if items:
    outputs = scoring.score(run.model, run.tokenizer, items, batch=request.batch,
                            progress=progress)
    result = aggregate.aggregate(items, outputs)
  meta = {"workdir": os.path.abspath(run.workdir), "step": run.step, "suites": names,
          "task_files": list(request.task_files), "n_per_subset": n}
  if "code" in names:
    settings = _code_settings(request)
    result.update(code.evaluate(run, n_per_level=n, settings=settings, batch=request.batch,
                                progress=progress))
    meta["flags"] = settings.flags()  # so `scaling reproduce` samples the same way
  if not result:
    raise RequestError("suites", "nothing to evaluate: the suites and task files hold no "
                       "items")
  aggregate.write(run.eval_path, result, meta)
  return result
