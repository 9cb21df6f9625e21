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

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

from tqdm import tqdm

from scaling import config as config_lib
from scaling.config import UserError
from scaling.sweep import local
from scaling.sweep import status as status_lib
from scaling.sweep.spec import Trial
from scaling.train import loop

# squeue states of a job that has not started (again) yet; any other listed state is running.
_WAITING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "SUSPENDED"}
_ACTIVE = ("queued", "running")
# A job gone from the queue may take a moment to show its result file on shared storage.
_RESULT_GRACE_S = 30.0


def _tool(name: str) -> str:
  path = shutil.which(name)
  if not path:
    raise UserError(f"{name} not found on PATH: the slurm executor needs a SLURM cluster's "
                    "commands (sbatch, squeue, scontrol); use --executor=local here")
  return path


def _call(cmd: list[str], what: str) -> str:
  """Runs a SLURM command; its own error line becomes ours."""
  result = subprocess.run(cmd, capture_output=True, text=True)
  if result.returncode != 0:
    lines = (result.stderr or result.stdout).strip().splitlines() or ["(no output)"]
    raise UserError(f"{what} failed: {lines[-1]}")
  return result.stdout


def sbatch_header(s, *, job_name: str, output: str, array: str | None = None) -> list[str]:
  """`#SBATCH` lines: one task per node, resources and limit from settings `s`, requeueable.

  SIGTERM comes `signal_grace_s` before the time limit to the job steps (`srun`), whose
  trainer then saves a checkpoint and exits preempted.
  """
  opts = [f"--job-name={job_name}", f"--nodes={s['nodes']}", "--ntasks-per-node=1",
          f"--time={s['time']}", f"--signal=TERM@{s['signal_grace_s']}", "--requeue",
          "--open-mode=append", f"--output={output}"]
  if array:
    opts.append(f"--array={array}")
  for key in ("partition", "account", "qos", "constraint", "mem"):
    if s[key]:
      opts.append(f"--{key}={s[key]}")
  if s["gpus_per_node"]:
    opts.append(f"--gpus-per-node={s['gpus_per_node']}")
  if s["cpus_per_task"]:
    opts.append(f"--cpus-per-task={s['cpus_per_task']}")
  opts += list(s["sbatch_args"])
  return [f"#SBATCH {o}" for o in opts]


def submit(script_path: str) -> str:
  """Submits a batch script; returns the job id."""
  out = _call([_tool("sbatch"), "--parsable", script_path], "sbatch")
  return out.strip().split(";")[0]


def queue() -> dict[str, str] | None:
  """Job id (`123` or `123_4` for array tasks) -> squeue state of this user's jobs.

  None when squeue cannot answer (the controller may be restarting): nothing is concluded.
  """
  result = subprocess.run([_tool("squeue"), "--me", "-h", "-r", "-o", "%i|%T"],
                          capture_output=True, text=True)
  if result.returncode != 0:
    return None
  return dict(line.split("|", 1) for line in result.stdout.split() if "|" in line)


def accounting_state(job_id: str) -> str | None:
  """The job's final state from `sacct`, where the cluster keeps accounting."""
  if not shutil.which("sacct"):
    return None
  result = subprocess.run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State"],
                          capture_output=True, text=True)
  states = result.stdout.split() if result.returncode == 0 else []
  return states[-1] if states else None


def _result_path(directory: str, name: str) -> str:
  return os.path.join(directory, "slurm", "results", f"{name}.json")


def _read_json(path: str) -> dict:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


def _write_json(path: str, data: dict) -> None:
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    json.dump(data, f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def _settled(record: dict) -> bool:
  """Finished for good, or in SLURM's hands (a `running` left by a local sweep is not)."""
  return record.get("state") in local.FINAL or (
      record.get("state") in _ACTIVE and bool(record.get("job_id")))


class SlurmExecutor:
  """Submits the trials that need running as an array job and waits for them."""

  def __init__(self, directory: str, sweep):
    self.directory = os.path.abspath(directory)
    self.sweep = sweep
    self.settings = sweep.slurm.to_dict()
    self.status = status_lib.Status(self.directory)
    self._gone_since: dict[str, float] = {}

  def check_available(self) -> None:
    for name in ("sbatch", "squeue", "scontrol"):
      _tool(name)

  def _script(self, names: list[str]) -> str:
    s = self.settings
    job_name = f"sweep-{self.sweep.name}"
    array = f"0-{len(names) - 1}" + (f"%{s['max_parallel']}" if s["max_parallel"] else "")
    output = os.path.join(self.directory, "logs", "slurm-%A_%a.out")
    lines = ["#!/bin/bash", *sbatch_header(s, job_name=job_name, output=output, array=array),
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
      result = _read_json(_result_path(self.directory, t.name))
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
        final = accounting_state(job) or "gone from the queue"
        log = os.path.relpath(os.path.join(self.directory, "logs"), os.getcwd())
        self._set(t, "failed", record, slurm_state=final,
                  error=f"SLURM job {job} ended without a result ({final}); see {log}/")

  def run(self, trials: list[Trial]) -> dict:
    self.check_available()
    for sub in ("logs", "trials", os.path.join("slurm", "results")):
      os.makedirs(os.path.join(self.directory, sub), exist_ok=True)
    jobs = queue()
    if jobs is None:
      raise UserError("squeue failed: is the SLURM controller reachable? (squeue --me)")
    self._refresh(trials, jobs)
    # Running, queued, completed and diverged trials are not submitted again.
    table = self.status.read()
    todo = [t for t in trials if not _settled(table.get(t.name, {}))]
    if todo:
      for t in todo:
        config_lib.save(t.cfg, local.paths(self.directory, t.name)["config"])
        try:
          os.remove(_result_path(self.directory, t.name))
        except FileNotFoundError:
          pass
      array_id = submit(self._script([t.name for t in todo]))
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
        jobs = queue()
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
      raise local.Interrupted("the SLURM jobs keep running; run the same command to wait "
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
  """One array task: train (via srun) and evaluate a trial, record it, requeue if preempted."""
  # SIGTERM is for the trainer, which saves a checkpoint first; this process waits for it.
  signal.signal(signal.SIGTERM, lambda *_: None)
  from scaling.sweep import run as sweep_run
  sweep, _ = sweep_run.load_saved(directory)
  env = os.environ
  array = env.get("SLURM_ARRAY_JOB_ID")
  job = f"{array}_{env['SLURM_ARRAY_TASK_ID']}" if array else env.get("SLURM_JOB_ID", "")
  path = _result_path(directory, name)
  before = _read_json(path)
  before = before if before.get("job_id") == job else {}
  started = time.time()
  launcher = ["srun", "--kill-on-bad-exit=1"]
  if env.get("SLURM_CPUS_PER_TASK"):  # some SLURM versions do not pass it on to steps
    launcher.append(f"--cpus-per-task={env['SLURM_CPUS_PER_TASK']}")
  # Several nodes: one process each, and JAX learns the layout from SLURM's environment.
  flags = ["--distributed"] if int(env.get("SLURM_NTASKS", "1")) > 1 else []
  result = local.run_trial(directory, name, sweep.eval, _run_logged, launcher, flags)
  step = status_lib.latest_step(local.paths(directory, name)["run"])
  attempts = [*before.get("attempts", []), {"state": result["state"], "step": step,
                                            "exit_code": result["exit_code"]}]
  _write_json(path, {**result, "job_id": job, "attempts": attempts,
                     "restarts": int(env.get("SLURM_RESTART_COUNT", "0")),
                     "wall_time_s": before.get("wall_time_s", 0.0) + time.time() - started})
  if result["state"] == "preempted" and job:
    # Back into the queue; the next start resumes from the checkpoint just saved. An array
    # task is named as such: the last task's SLURM_JOB_ID names the whole array.
    requeued = subprocess.call(["scontrol", "requeue", job])
    return 0 if requeued == 0 else loop.EXIT_PREEMPTED
  return {"completed": 0, "diverged": loop.EXIT_DIVERGED}.get(result["state"], 1)


if __name__ == "__main__":
  if len(sys.argv) != 4 or sys.argv[1] != "task":
    sys.exit("usage: python -m scaling.sweep.slurm task SWEEP_DIR TRIAL")
  sys.exit(task(sys.argv[2], sys.argv[3]))
