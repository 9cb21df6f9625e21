"""A sweep from its spec to its results table, fits and figures."""

from __future__ import annotations

import os

from scaling import config as config_lib
from scaling.sweep import results, spec
from scaling.sweep.local import LocalExecutor


def prepare(spec_path: str, overrides: list[str], directory: str | None,
            executor: str | None = None):
  """Loads, overrides and expands the sweep; checks every trial before anything trains."""
  sweep = spec.load(spec_path)
  config_lib.apply_overrides(sweep, overrides)
  with sweep.unlocked():
    sweep.executor = executor or sweep.executor
  if sweep.executor not in spec.EXECUTORS:
    raise config_lib.ConfigError(f"sweep.executor: unknown {sweep.executor!r}; choose from "
                                 f"{', '.join(spec.EXECUTORS)}")
  trials = spec.trials(sweep)
  # Cluster jobs with GPUs or several nodes see devices this machine lacks: their mesh is
  # checked in the job (a wrong one fails that trial with the same one-line error).
  s = sweep.slurm
  if sweep.executor == "local" or (s.nodes == 1 and not s.gpus_per_node):
    spec.check(trials)
  directory = spec.sweep_dir(sweep, directory)
  return sweep, trials, directory


def save_spec(sweep, directory: str) -> None:
  os.makedirs(directory, exist_ok=True)
  config_lib.save(sweep, os.path.join(directory, "sweep.json"))


def load_saved(directory: str):
  """The sweep saved in a sweep directory, and its trials."""
  path = os.path.join(directory, "sweep.json")
  if not os.path.exists(path):
    raise config_lib.UserError(f"{directory} is not a sweep directory (no sweep.json)")
  sweep = config_lib.from_json(path)
  return sweep, spec.trials(sweep)


def run(spec_path: str, overrides: list[str], directory: str | None,
        executor: str | None = None) -> tuple[str, list[dict]]:
  sweep, trials, directory = prepare(spec_path, overrides, directory, executor)
  if sweep.executor == "slurm":
    from scaling.sweep.slurm import SlurmExecutor
    runner = SlurmExecutor(directory, sweep)
    runner.check_available()  # before anything is written
    save_spec(sweep, directory)
    runner.run(trials)
  else:
    save_spec(sweep, directory)
    LocalExecutor(directory, sweep.eval).run(trials)
  return directory, results.collect(directory, trials)


def status_lines(directory: str) -> list[str]:
  _, trials = load_saved(directory)
  from scaling.sweep import status as status_lib
  states = status_lib.Status(directory).read()
  lines = [f"{'size':<8} {'seed':>4}  {'state':<10} {'step':>12}  trial"]
  for t in trials:
    s = states.get(t.name, {})
    step = status_lib.latest_step(os.path.join(directory, "runs", t.name))
    lines.append(f"{t.size:<8} {t.seed:>4}  {s.get('state', 'pending'):<10} "
                 f"{f'{step}/{t.cfg.train.steps}':>12}  {t.name}"
                 + (f"  job {s['job_id']}" if s.get("job_id") else "")
                 + (f"  ({s['error']})" if s.get("error") else ""))
  return lines
