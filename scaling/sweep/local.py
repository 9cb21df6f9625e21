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

from tqdm import tqdm

from scaling import config as config_lib
from scaling.sweep import status as status_lib
from scaling.sweep.spec import Trial
from scaling.train import loop

_TRAIN_STATUS = {loop.EXIT_OK: "trained", loop.EXIT_DIVERGED: "diverged",
                 loop.EXIT_PREEMPTED: "preempted"}


def _die_with_parent() -> None:
  """In the child: get SIGTERM (checkpoint and stop) if the executor itself is killed."""
  try:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
  except OSError:  # Not Linux: an orphaned trial then runs to its end.
    pass


def _cli(*args: str) -> list[str]:
  return [sys.executable, "-m", "scaling.cli", *args]


def _last_error(log_path: str) -> str:
  with open(log_path, errors="replace") as f:
    lines = [line.strip() for line in f if line.strip()]
  errors = [line for line in lines if line.startswith("error:") or "Error" in line]
  return (errors or lines or ["(no output)"])[-1][:500]


class Interrupted(Exception):
  """Ctrl-C: the running trial was checkpointed; re-run the sweep to continue."""


class LocalExecutor:
  """Runs trials sequentially as subprocesses, recording each one's status."""

  def __init__(self, directory: str, eval_cfg):
    self.directory = directory
    self.eval_cfg = eval_cfg
    self.status = status_lib.Status(directory)

  def _run(self, cmd: list[str], log_path: str, trial: Trial, bar: tqdm) -> int:
    with open(log_path, "a") as log:
      proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True, preexec_fn=_die_with_parent)
      try:
        while proc.poll() is None:
          time.sleep(0.5)
          step = status_lib.latest_step(self.run_dir(trial))
          bar.set_postfix_str(f"{trial.size} seed {trial.seed}: step {step}/"
                              f"{trial.cfg.train.steps}", refresh=True)
      except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        raise Interrupted from None
    return proc.returncode

  def run_dir(self, trial: Trial) -> str:
    return os.path.join(self.directory, "runs", trial.name)

  def run(self, trials: list[Trial]) -> dict:
    os.makedirs(os.path.join(self.directory, "logs"), exist_ok=True)
    os.makedirs(os.path.join(self.directory, "trials"), exist_ok=True)
    # Completed and diverged trials are final (a diverged one would diverge again);
    # failed, preempted and interrupted ones run (or resume) again.
    todo = [t for t in trials if self.status.get(t.name) not in ("completed", "diverged")]
    bar = tqdm(total=len(trials), initial=len(trials) - len(todo), unit="trial",
               desc="sweep", dynamic_ncols=True)
    try:
      for trial in todo:
        config_path = os.path.join(self.directory, "trials", f"{trial.name}.json")
        config_lib.save(trial.cfg, config_path)
        log_path = os.path.join(self.directory, "logs", f"{trial.name}.log")
        started = time.time()
        self.status.set(trial.name, "running", size=trial.size, seed=trial.seed)
        code = self._run(_cli("train", f"--config={config_path}",
                              f"--workdir={self.run_dir(trial)}"), log_path, trial, bar)
        state = _TRAIN_STATUS.get(code, "failed")
        if state == "trained":
          code = self._run(_cli("eval", f"--workdir={self.run_dir(trial)}",
                                f"--suite={self.eval_cfg.suites}", f"-n={self.eval_cfg.n}"),
                           log_path, trial, bar)
          state = "completed" if code == 0 else "failed"
        error = None if state in ("completed", "diverged") else _last_error(log_path)
        self.status.set(trial.name, state, size=trial.size, seed=trial.seed,
                        exit_code=code, error=error, wall_time_s=time.time() - started)
        bar.update(1)
        if state != "completed":
          tqdm.write(f"trial {trial.size} seed {trial.seed}: {state}"
                     + (f" ({error})" if error else ""))
    except Interrupted:
      self.status.set(trial.name, "preempted", size=trial.size, seed=trial.seed)
      bar.close()
      raise
    bar.close()
    return self.status.read()
