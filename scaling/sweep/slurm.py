"""The `slurm` sweep executor: pending trials become one array job, one task per trial.

Each array task runs `python -m scaling.sweep.slurm task DIR TRIAL`, which trains (under
`srun`, so SLURM's SIGTERM before a time limit or preemption reaches the trainer) and then
evaluates exactly as the local executor does, and writes its outcome to
`slurm/results/TRIAL.json`. A trainer that exits preempted (75) saved a checkpoint; the task
then requeues its own job (`scontrol requeue`), which resumes from that checkpoint. The
executor records job ids and states in `status.json`, polls `squeue` until every job has
left the queue, and takes each trial's state from its result file (or, without one, from
`sacct` where the cluster keeps accounting).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time

from tqdm import tqdm

from scaling import cluster, exits, files
from scaling.errors import UserError
from scaling.sweep import spec as spec_lib
from scaling.sweep import status as status_lib
from scaling.sweep import trial as trial_lib
from scaling.sweep.layout import SweepDir
from scaling.sweep.local import Interrupted
from scaling.sweep.spec import Trial

# squeue states of a job that has not started (again) yet; any other listed state is running.
_WAITING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "SUSPENDED"}
_ACTIVE = ("queued", "running")
# A job gone from the queue may take a moment to show its result file on shared storage.
_RESULT_GRACE_S = 30.0


def _settled(record: dict) -> bool:
  """Finished for good, or in SLURM's hands (a `running` left by a local sweep is not)."""
  return record.get("state") in trial_lib.FINAL or (
      record.get("state") in _ACTIVE and bool(record.get("job_id")))


class SlurmExecutor:
  """Submits the trials that need running as an array job and waits for them."""

  def __init__(self, layout: SweepDir, sweep):
    self.layout = SweepDir(os.path.abspath(layout.path))
    self.directory = self.layout.path
    self.sweep = sweep
    self.settings = sweep.slurm.to_dict()
    self.status = status_lib.Status(self.layout.status)
    self._gone_since: dict[str, float] = {}

  def check_available(self) -> None:
    for name in ("sbatch", "squeue", "scontrol"):
      cluster.tool(name)

  def _script(self, names: list[str]) -> str:
    s = self.settings
    job_name = f"sweep-{self.sweep.name}"
    array = f"0-{len(names) - 1}" + (f"%{s['max_parallel']}" if s["max_parallel"] else "")
    output = os.path.join(self.directory, "logs", "slurm-%A_%a.out")
    lines = ["#!/bin/bash", *cluster.sbatch_header(s, job_name=job_name, output=output,
                                                    array=array),
             "# Array task i trains and evaluates trial i like the local executor; a preempted",
             "# trainer (exit 75) has saved a checkpoint and the task requeues itself.",
             f"trials=({' '.join(names)})",
             f"exec {shlex.quote(sys.executable)} -m scaling.sweep.slurm task "
             f"{shlex.quote(self.directory)} \"${{trials[$SLURM_ARRAY_TASK_ID]}}\""]
    os.makedirs(os.path.join(self.directory, "slurm"), exist_ok=True)
    path = os.path.join(self.directory, "slurm", f"submit-{time.strftime('%Y%m%d-%H%M%S')}.sh")
    with open(path, "w") as f:
      f.write("\n".join(lines) + "\n")
    return path

  def _set(self, trial: Trial, state: str, record: dict, **fields) -> None:
    keep = {k: record.get(k) for k in ("job_id", "restarts", "wall_time_s")}
    self.status.set(trial.name, state, size=trial.size, seed=trial.seed, **{**keep, **fields})

  def _refresh(self, trials: list[Trial], jobs: dict[str, str]) -> None:
    """Brings every submitted, unfinished trial's record up to date with the queue."""
    table = self.status.read()
    for t in trials:
      record = table.get(t.name, {})
      job = record.get("job_id")
      if not job or record.get("state") not in _ACTIVE:
        continue
      result = files.read_json(self.layout.slurm_result(t.name), default={})
      if result.get("job_id") != job:
        result = {}
      restarts = result.get("restarts", record.get("restarts"))
      if job in jobs:
        state = "queued" if jobs[job] in _WAITING else "running"
        self._set(t, state, record, slurm_state=jobs[job], restarts=restarts)
      elif result:
        self._set(t, result["state"], record, slurm_state=None, restarts=restarts,
                  exit_code=result.get("exit_code"), error=result.get("error"),
                  wall_time_s=result.get("wall_time_s"))
      elif time.monotonic() - self._gone_since.setdefault(job, time.monotonic()) < _RESULT_GRACE_S:
        continue
      else:
        final = cluster.accounting_state(job) or "gone from the queue"
        log = os.path.relpath(os.path.join(self.directory, "logs"), os.getcwd())
        self._set(t, "failed", record, slurm_state=final,
                  error=f"SLURM job {job} ended without a result ({final}); see {log}/")

  def run(self, trials: list[Trial]) -> dict:
    self.check_available()
    for folder in (self.layout.logs, os.path.dirname(self.layout.slurm_result("x"))):
      os.makedirs(folder, exist_ok=True)
    jobs = cluster.queue()
    if jobs is None:
      raise UserError("squeue failed: is the SLURM controller reachable? (squeue --me)")
    self._refresh(trials, jobs)
    # Running, queued, completed and diverged trials are not submitted again.
    table = self.status.read()
    todo = [t for t in trials if not _settled(table.get(t.name, {}))]
    if todo:
      for t in todo:
        try:
          os.remove(self.layout.slurm_result(t.name))
        except FileNotFoundError:
          pass
      array_id = cluster.submit(self._script([t.name for t in todo]))
      for i, t in enumerate(todo):
        self.status.set(t.name, "queued", size=t.size, seed=t.seed, job_id=f"{array_id}_{i}")
      print(f"submitted {len(todo)} trial(s) as SLURM array job {array_id}", file=sys.stderr)
    else:
      print("nothing to submit", file=sys.stderr)
    return self._wait(trials)

  def _wait(self, trials: list[Trial]) -> dict:
    s = self.settings
    names = {t.name for t in trials}
    start = time.monotonic()
    bar = tqdm(total=len(trials), unit="trial", desc="sweep (slurm)", dynamic_ncols=True)
    try:
      while True:
        jobs = cluster.queue()
        if jobs is not None:
          self._refresh(trials, jobs)
        table = {k: v for k, v in self.status.read().items() if k in names}
        states = [v.get("state") for v in table.values()]
        bar.n = len(trials) - sum(st in _ACTIVE for st in states)
        bar.set_postfix_str(f"{states.count('running')} running, {states.count('queued')} "
                            "queued", refresh=True)
        active = [v["job_id"] for v in table.values() if _settled(v) and v["state"] in _ACTIVE]
        if not active:
          break
        if s["timeout_s"] and time.monotonic() - start > s["timeout_s"]:
          raise UserError(f"gave up after {s['timeout_s']:g} s waiting for SLURM jobs "
                          f"{', '.join(active)}; they keep running: run the same command to "
                          "wait for them again")
        time.sleep(s["poll_s"])
    except KeyboardInterrupt:
      raise Interrupted("the SLURM jobs keep running; run the same command to wait "
                              "for them (nothing is submitted twice)") from None
    finally:
      bar.close()
    for name, v in self.status.read().items():
      if name in names and v.get("state") != "completed":
        tqdm.write(f"trial {v.get('size')} seed {v.get('seed')}: {v.get('state')}"
                   + (f" ({v['error']})" if v.get("error") else ""))
    return self.status.read()


def _run_logged(cmd: list[str], log_path: str) -> int:
  with open(log_path, "a") as log:
    return subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)


def task(directory: str, name: str) -> int:
  """One array task: train (via srun) and evaluate a trial, record it, requeue if preempted.

  Reads the sweep and the trial as saved (JSON); no config file is executed.
  """
  # SIGTERM is for the trainer, which saves a checkpoint first; this process waits for it.
  signal.signal(signal.SIGTERM, lambda *_: None)
  layout = SweepDir(directory)
  sweep, trials = spec_lib.load_saved(layout)
  trial = next(t for t in trials if t.name == name)
  env = os.environ
  array = env.get("SLURM_ARRAY_JOB_ID")
  job = f"{array}_{env['SLURM_ARRAY_TASK_ID']}" if array else env.get("SLURM_JOB_ID", "")
  path = layout.slurm_result(name)
  before = files.read_json(path, default={})
  before = before if before.get("job_id") == job else {}
  started = time.time()
  launcher = ["srun", "--kill-on-bad-exit=1"]
  if env.get("SLURM_CPUS_PER_TASK"):  # some SLURM versions do not pass it on to steps
    launcher.append(f"--cpus-per-task={env['SLURM_CPUS_PER_TASK']}")
  # Several nodes: one process each, and JAX learns the layout from SLURM's environment.
  flags = ["--distributed"] if int(env.get("SLURM_NTASKS", "1")) > 1 else []
  result = trial_lib.run_trial(layout, trial, spec_lib.eval_request(sweep), _run_logged,
                               launcher, flags)
  step = status_lib.latest_step(layout.run(name).metrics)
  attempts = [*before.get("attempts", []), {"state": result["state"], "step": step,
                                            "exit_code": result["exit_code"]}]
  files.write_json(path, {**result, "job_id": job, "attempts": attempts,
                          "restarts": int(env.get("SLURM_RESTART_COUNT", "0")),
                          "wall_time_s": before.get("wall_time_s", 0.0) + time.time() - started},
                   sort_keys=True)
  if result["state"] == "preempted" and job:
    # Back into the queue; the next start resumes from the checkpoint just saved. An array
    # task is named as such: the last task's SLURM_JOB_ID names the whole array.
    requeued = subprocess.call(["scontrol", "requeue", job])
    return 0 if requeued == 0 else exits.PREEMPTED
  return exits.FOR_STATUS.get(result["state"], exits.ERROR)


if __name__ == "__main__":
  if len(sys.argv) != 4 or sys.argv[1] != "task":
    sys.exit("usage: python -m scaling.sweep.slurm task SWEEP_DIR TRIAL")
  sys.exit(task(sys.argv[2], sys.argv[3]))
