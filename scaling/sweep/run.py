"""A sweep from its spec to its results table: check everything, save, run the trials."""

from __future__ import annotations

from scaling.sweep import results, spec
from scaling.sweep import status as status_lib
from scaling.sweep.layout import SweepDir
from scaling.sweep.local import LocalExecutor
from scaling.sweep.slurm import SlurmExecutor


def prepare(spec_path: str, overrides: list[str], directory: str | None,
            executor: str | None = None):
  """Loads, overrides and expands the sweep; checks every trial before anything trains."""
  sweep = spec.load(spec_path, overrides, executor)
  trials = spec.trials(sweep)
  # Cluster jobs with GPUs or several nodes see devices this machine lacks: their mesh is
  # checked in the job (a wrong one fails that trial with the same one-line error).
  s = sweep.slurm
  local_devices = sweep.executor == "local" or (s.nodes == 1 and not s.gpus_per_node)
  spec.check(sweep, trials, check_mesh=local_devices)
  return sweep, trials, SweepDir(spec.sweep_dir(sweep, directory))


def run(spec_path: str, overrides: list[str], directory: str | None,
        executor: str | None = None) -> tuple[str, list[dict]]:
  sweep, trials, layout = prepare(spec_path, overrides, directory, executor)
  if sweep.executor == "slurm":
    runner = SlurmExecutor(layout, sweep)
    runner.check_available()  # before anything is written
    spec.save(sweep, trials, runner.layout)
    runner.run(trials)
  else:
    spec.save(sweep, trials, layout)
    LocalExecutor(layout, spec.eval_request(sweep), max_parallel=sweep.max_parallel,
                  device_per_core=sweep.cpu_device_per_core).run(trials)
  return layout.path, results.collect(layout, trials)


def status_lines(directory: str) -> list[str]:
  layout = SweepDir(directory)
  _, trials = spec.load_saved(layout)
  states = status_lib.Status(layout.status).read()
  lines = [f"{'size':<8} {'seed':>4}  {'state':<11} {'step':>12}  trial"]
  for t in trials:
    s = states.get(t.name, {})
    step = status_lib.latest_step(layout.run(t.name).metrics)
    lines.append(f"{t.size:<8} {t.seed:>4}  {s.get('state', 'pending'):<11} "
                 f"{f'{step}/{t.cfg.train.steps}':>12}  {t.name}"
                 + (f"  job {s['job_id']}" if s.get("job_id") else "")
                 + (f"  ({s['error']})" if s.get("error") else ""))
  return lines


def collect(directory: str) -> list[dict]:
  layout = SweepDir(directory)
  _, trials = spec.load_saved(layout)
  return results.collect(layout, trials)
