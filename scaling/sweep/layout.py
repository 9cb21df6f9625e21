"""Where things live in a sweep directory; every stage names its files through this module.

    sweep.json        the resolved sweep spec
    trials.json       the trials: name, size, seed (and any other axis)
    trials/NAME.json  each trial's resolved config
    runs/NAME/        each trial's run directory (`scaling.rundir`)
    logs/NAME.log     each trial's train and eval output
    status.json       each trial's state (queued, running, completed, ...)
    results.jsonl     the results table, one row per trial; results.csv the same flat
    analysis.json     fits and reports (`scaling plot`); figures/ and report.html beside it
    cache/compile/    the persistent compilation cache its trials share
"""

from __future__ import annotations

import dataclasses
import os

from scaling.rundir import RunDir


@dataclasses.dataclass(frozen=True)
class SweepDir:
  path: str

  def _at(self, *parts: str) -> str:
    return os.path.join(self.path, *parts)

  sweep = property(lambda self: self._at("sweep.json"))
  index = property(lambda self: self._at("trials.json"))
  trials = property(lambda self: self._at("trials"))
  runs = property(lambda self: self._at("runs"))
  logs = property(lambda self: self._at("logs"))
  status = property(lambda self: self._at("status.json"))
  results = property(lambda self: self._at("results.jsonl"))
  results_csv = property(lambda self: self._at("results.csv"))
  analysis = property(lambda self: self._at("analysis.json"))
  figures = property(lambda self: self._at("figures"))
  report = property(lambda self: self._at("report.html"))
  compile_cache = property(lambda self: self._at("cache", "compile"))
  slurm = property(lambda self: self._at("slurm"))

  def trial_config(self, name: str) -> str:
    return os.path.join(self.trials, f"{name}.json")

  def run(self, name: str) -> RunDir:
    return RunDir(os.path.join(self.runs, name))

  def log(self, name: str) -> str:
    return os.path.join(self.logs, f"{name}.log")

  def slurm_result(self, name: str) -> str:
    return os.path.join(self.slurm, "results", f"{name}.json")
