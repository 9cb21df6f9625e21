"""Run a sweep's trials on this machine, up to `max_parallel` at once, each on its own
devices: its share of the CPU cores (an affinity mask and one XLA thread per core), or
its own GPUs (`CUDA_VISIBLE_DEVICES`), as on a multi-GPU cloud machine without SLURM.

Every trial runs in its own processes and session, so Ctrl-C reaches only this executor,
which passes it on: the running trials save a checkpoint and end `interrupted`, and the
sweep stops. A second Ctrl-C is passed on too and ends them at once. Running the sweep
again skips finished trials and resumes interrupted ones. A trial that fails is recorded
and the others go on.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import threading
import time

from tqdm import tqdm

from scaling import cluster, compile_cache
from scaling.sweep import status as status_lib
from scaling.sweep import trial as trial_lib
from scaling.sweep.spec import Trial


DEVICE_COUNT = "--xla_force_host_platform_device_count"


class Interrupted(Exception):
  """The sweep was interrupted; its message says what happens to the running trials."""


@dataclasses.dataclass(frozen=True)
class Slot:
  """The devices one trial runs on: CPU cores, or GPU ids (empty: everything).

  With `device_per_core`, a CPU trial sees one JAX device per core of its share, so its
  mesh (`data=-1`) splits the batch over the cores: small models, whose step is many
  small operations, ran 1.75x faster so than as one device using both cores (measured
  at 23k-37k parameters; no gain at 120k).
  """
  cores: tuple[int, ...] = ()
  gpus: tuple[int, ...] = ()
  device_per_core: bool = False

  def environment(self, env: dict) -> dict:
    env = dict(env)
    if self.gpus:
      env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, self.gpus))
    if self.cores:
      flags = env.get("XLA_FLAGS", "").split()
      # XLA's CPU thread pool sizes itself from the machine, not the affinity mask.
      flags = [f for f in flags if not f.startswith("--xla_cpu_multi_thread_eigen")]
      if len(self.cores) == 1:
        flags.append("--xla_cpu_multi_thread_eigen=false")
      env["XLA_FLAGS"] = " ".join(flags)
      env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = str(len(self.cores))
    if self.device_per_core and self.cores and not any(
        f.startswith(DEVICE_COUNT) for f in env.get("XLA_FLAGS", "").split()):
      env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {DEVICE_COUNT}={len(self.cores)}".strip()
    return env

def _gpu_count() -> int:
  """GPUs visible here, without starting JAX (which would take their memory)."""
  if not shutil.which("nvidia-smi"):
    return 0
  out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
  return sum(line.startswith("GPU ") for line in out.stdout.splitlines())


def slots(max_parallel: int, *, device_per_core: bool = False) -> list[Slot]:
  """The device shares of up to `max_parallel` trials at once (0 or 1: one trial)."""
  gpus = _gpu_count()
  if gpus:
    n = min(max(max_parallel, 1), gpus)
    per = gpus // n
    return [Slot(gpus=tuple(range(i * per, (i + 1) * per))) if n > 1 else Slot()
            for i in range(n)]
  cores = sorted(os.sched_getaffinity(0))
  n = min(max(max_parallel, 1), len(cores))
  per = len(cores) // n
  return [Slot(cores=tuple(cores[i * per:(i + 1) * per]), device_per_core=device_per_core)
          for i in range(n)]


def largest_first(trials: list[Trial]) -> list[Trial]:
  """The order in which trials start when several run at once: the largest (longest) first,
  so that no long trial is left to run alone at the end; a size's seeds keep their order."""
  return sorted(trials, key=lambda t: -t.params)


class LocalExecutor:
  """Runs trials as subprocesses, `len(slots)` at a time, recording each one's status."""

  def __init__(self, layout, request, *, max_parallel: int = 1,
               device_per_core: bool = False):
    self.layout = layout
    self.request = request
    self.status = status_lib.Status(layout.status)
    self.slots = slots(max_parallel, device_per_core=device_per_core)
    self._procs: set[subprocess.Popen] = set()
    self._lock = threading.Lock()
    self._stop = threading.Event()
    # Trials of one size differ only in their seed: they share compiled programs.
    self._env = {**os.environ, compile_cache.ENV: os.environ.get(
        compile_cache.ENV, os.path.abspath(layout.compile_cache))}

  def _run(self, cmd: list[str], log_path: str, slot: Slot) -> int:
    if self._stop.is_set():
      raise Interrupted("stopping")
    with open(log_path, "a") as log:
      proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                              env=cluster.child_environment(slot.environment(self._env),
                                                            slot.cores),
                              start_new_session=True)
      with self._lock:
        self._procs.add(proc)
      try:
        return proc.wait()
      finally:
        with self._lock:
          self._procs.discard(proc)

  def _compiling(self, running: list[Trial]) -> set[str]:
    """Sizes with a running trial that has not logged a step yet: it is still compiling
    (or preparing data), and another trial of its size would compile the same programs
    instead of reading them from the cache a moment later."""
    return {t.size for t in running
            if status_lib.latest_step(self.layout.run(t.name).metrics) == 0}

  def _next(self, todo: list[Trial], running: list[Trial]) -> Trial | None:
    """The next trial that can start (a branch waits for its trunk); None when none is left.

    A branch whose trunk did not complete is recorded as failed. A trial whose size is
    still compiling in another slot lets a trial of another size go first, if there is one.
    """
    while not self._stop.is_set():
      with self._lock:
        if not todo:
          return None
        ready = []
        for trial in list(todo):
          trunk = self.status.get(trial.trunk) if trial.trunk else "completed"
          if trunk == "completed":
            ready.append(trial)
          elif trunk in ("failed", "diverged", "preempted"):
            todo.remove(trial)
            self.status.set(trial.name, "failed", size=trial.size, seed=trial.seed,
                            error=f"its trunk {trial.trunk} ended {trunk}")
        if ready:
          compiling = self._compiling(running)
          trial = next((t for t in ready if t.size not in compiling), ready[0])
          todo.remove(trial)
          running.append(trial)
          return trial
      time.sleep(0.2)
    return None

  def _worker(self, todo: list[Trial], running: list[Trial], slot: Slot, bar: tqdm) -> None:
    while (trial := self._next(todo, running)) is not None:
      try:
        self._attempt(trial, slot, bar)
      finally:
        with self._lock:
          running.remove(trial)

  def _attempt(self, trial: Trial, slot: Slot, bar: tqdm) -> None:
    """Runs one trial in `slot` and records how it ended."""
    started = time.time()
    self.status.set(trial.name, "running", size=trial.size, seed=trial.seed)
    try:
      result = trial_lib.run_trial(self.layout, trial, self.request,
                                   lambda cmd, log: self._run(cmd, log, slot))
    except Interrupted:
      self.status.set(trial.name, "interrupted", size=trial.size, seed=trial.seed)
      return
    if self._stop.is_set() and result["state"] != "completed":
      result.update(state="interrupted", error=None)  # stopped by the user, not failed
    self.status.set(trial.name, size=trial.size, seed=trial.seed,
                    wall_time_s=time.time() - started, **result)
    bar.update(1)
    if result["state"] not in ("completed", "interrupted"):
      tqdm.write(f"trial {trial.size} seed {trial.seed}: {result['state']}"
                 + (f" ({result['error']})" if result["error"] else ""))

  def _progress(self, running: list[Trial], bar: tqdm) -> None:
    with self._lock:
      running = list(running)
    steps = [f"{t.size}/{t.seed}: {status_lib.latest_step(self.layout.run(t.name).metrics)}"
             for t in running]
    bar.set_postfix_str(", ".join(steps), refresh=True)

  def run(self, trials: list[Trial]) -> dict:
    os.makedirs(self.layout.logs, exist_ok=True)
    # Failed, preempted and interrupted trials run (or resume) again.
    pending = [t for t in trials if self.status.get(t.name) not in trial_lib.FINAL]
    todo = list(pending)
    if len(self.slots) > 1:
      todo = largest_first(todo)
    running: list[Trial] = []
    bar = tqdm(total=len(trials), initial=len(trials) - len(pending), unit="trial",
               desc="sweep", dynamic_ncols=True)
    workers = [threading.Thread(target=self._worker, args=(todo, running, slot, bar),
                                daemon=True)
               for slot in self.slots]
    for w in workers:
      w.start()
    try:
      while any(w.is_alive() for w in workers):
        self._progress(running, bar)
        time.sleep(0.5)
    except KeyboardInterrupt:
      self._stop.set()
      self._signal_trials(signal.SIGINT)  # each saves a checkpoint at its next step
      try:
        for w in workers:
          w.join()
      except KeyboardInterrupt:  # a second Ctrl-C: passed on, it ends the trials at once
        self._signal_trials(signal.SIGINT)
        for w in workers:
          w.join(timeout=30)
        raise Interrupted("the running trials stopped without saving; run the same command "
                          "to resume them from their last checkpoints") from None
      raise Interrupted("the running trials saved a checkpoint; run the same command to "
                        "continue") from None
    finally:
      bar.close()
    return self.status.read()

  def _signal_trials(self, signum: int) -> None:
    with self._lock:
      for proc in self._procs:
        if proc.poll() is None:
          proc.send_signal(signum)
