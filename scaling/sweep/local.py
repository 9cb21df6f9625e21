"""Run a sweep's trials on this machine, one after another, each as `scaling train` + `eval`.

Each trial runs in its own process (a crash, a divergence or an exhausted memory ends the
trial, not the sweep) and its own session, so Ctrl-C reaches only this executor, which
then asks the running trial to checkpoint (SIGTERM) and stops. Running the sweep again
skips finished trials and resumes the interrupted one.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from typing import Callable, Sequence

from tqdm import tqdm

from scaling import config as config_lib
from scaling.sweep import status as status_lib
from scaling.sweep.spec import Trial
from scaling.train import loop

_TRAIN_STATUS = {loop.EXIT_OK: "trained", loop.EXIT_DIVERGED: "diverged",
                 loop.EXIT_PREEMPTED: "preempted"}


def die_with_parent() -> None:
  """In the child: get SIGTERM (checkpoint and stop) if the executor itself is killed."""
  try:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
  except OSError:  # Not Linux: an orphaned trial then runs to its end.
    pass


def cli_command(*args: str) -> list[str]:
  return [sys.executable, "-m", "scaling.cli", *args]


def _last_error(log_path: str) -> str:
  with open(log_path, errors="replace") as f:
    lines = [line.strip() for line in f if line.strip()]
  errors = [line for line in lines if line.startswith("error:") or "Error" in line]
  return (errors or lines or ["(no output)"])[-1][:500]


class Interrupted(Exception):
  """The sweep was interrupted; its message says what happens to the running trials."""


FINAL = ("completed", "diverged")  # a diverged trial would diverge again: not re-run


def paths(directory: str, name: str) -> dict[str, str]:
  """Where a trial's saved config, run directory and log live in the sweep directory."""
  return {"config": os.path.join(directory, "trials", f"{name}.json"),
          "run": os.path.join(directory, "runs", name),
          "log": os.path.join(directory, "logs", f"{name}.log")}


def eval_flags(eval_cfg) -> list[str]:
  """`scaling eval` flags from the sweep's `eval` section: `suites`, `n`, and any other
  key as `--key=value` (e.g. `steps="5,10,20,50"` for image models)."""
  flags = [f"--suite={eval_cfg.suites}", f"-n={eval_cfg.n}"]
  return flags + [f"--{k}={v}" for k, v in sorted(eval_cfg.items()) if k not in ("suites", "n")]


def run_trial(directory: str, name: str, eval_cfg, run: Callable[[list[str], str], int],
              launcher: Sequence[str] = (), train_flags: Sequence[str] = ()) -> dict:
  """Trains then evaluates a saved trial; `run(cmd, log_path)` runs a command, returns its code.

  Shared by every executor; `launcher` prefixes the train command (`srun ...`). Returns the
  trial's status fields: state, exit_code and, unless it completed or diverged, error.
  """
  p = paths(directory, name)
  code = run([*launcher, *cli_command("train", f"--config={p['config']}", f"--workdir={p['run']}",
                               *train_flags)], p["log"])
  state = _TRAIN_STATUS.get(code, "failed")
  if state == "trained":
    code = run(cli_command("eval", f"--workdir={p['run']}", *eval_flags(eval_cfg)), p["log"])
    state = "completed" if code == 0 else "failed"
  error = None if state in FINAL else _last_error(p["log"])
  return {"state": state, "exit_code": code, "error": error}


class LocalExecutor:
  """Runs trials sequentially as subprocesses, recording each one's status."""

  def __init__(self, directory: str, eval_cfg):
    self.directory = directory
    self.eval_cfg = eval_cfg
    self.status = status_lib.Status(directory)

  def _run(self, cmd: list[str], log_path: str, trial: Trial, bar: tqdm) -> int:
    with open(log_path, "a") as log:
      proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True, preexec_fn=die_with_parent)
      try:
        while proc.poll() is None:
          time.sleep(0.5)
          step = status_lib.latest_step(self.run_dir(trial))
          bar.set_postfix_str(f"{trial.size} seed {trial.seed}: step {step}/"
                              f"{trial.cfg.train.steps}", refresh=True)
      except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        raise Interrupted("the running trial saved a checkpoint; run the same command to "
                          "continue") from None
    return proc.returncode

  def run_dir(self, trial: Trial) -> str:
    return paths(self.directory, trial.name)["run"]

  def run(self, trials: list[Trial]) -> dict:
    os.makedirs(os.path.join(self.directory, "logs"), exist_ok=True)
    os.makedirs(os.path.join(self.directory, "trials"), exist_ok=True)
    # Failed, preempted and interrupted trials run (or resume) again.
    todo = [t for t in trials if self.status.get(t.name) not in FINAL]
    bar = tqdm(total=len(trials), initial=len(trials) - len(todo), unit="trial",
               desc="sweep", dynamic_ncols=True)
    try:
      for trial in todo:
        config_lib.save(trial.cfg, paths(self.directory, trial.name)["config"])
        started = time.time()
        self.status.set(trial.name, "running", size=trial.size, seed=trial.seed)
        result = run_trial(self.directory, trial.name, self.eval_cfg,
                           lambda cmd, log: self._run(cmd, log, trial, bar))
        self.status.set(trial.name, size=trial.size, seed=trial.seed,
                        wall_time_s=time.time() - started, **result)
        bar.update(1)
        if result["state"] != "completed":
          tqdm.write(f"trial {trial.size} seed {trial.seed}: {result['state']}"
                     + (f" ({result['error']})" if result["error"] else ""))
    except Interrupted:
      self.status.set(trial.name, "preempted", size=trial.size, seed=trial.seed)
      bar.close()
      raise
    bar.close()
    return self.status.read()
