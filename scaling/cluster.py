"""What the launchers and the sweep executors share about running `scaling` commands as
other processes: child processes that stop with their parent, the SLURM command-line
tools, batch-script headers, and free local ports.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys

from scaling.errors import UserError

# Every trial or launched run is one job of `nodes` x one task; `gpus_per_node` and
# `cpus_per_task` 0 mean "do not ask". Empty strings leave the cluster's defaults.
SLURM_DEFAULTS = dict(
    partition="", account="", qos="", constraint="",
    time="4:00:00",           # wall-clock limit per job, as sbatch --time takes it
    nodes=1, gpus_per_node=0, cpus_per_task=0, mem="",
    signal_grace_s=120,       # SIGTERM this long before the limit: save a checkpoint, requeue
    max_parallel=0,           # array throttle (`--array=...%N`); 0: no limit
    sbatch_args=(),           # any other sbatch options, e.g. ("--exclusive",)
    poll_s=15.0,              # how often the executor asks squeue
    timeout_s=0.0,            # give up waiting after this long (jobs keep running); 0: never
)


def cli_command(*args: str) -> list[str]:
  """`scaling ARGS...` as run by this Python, whatever is on PATH."""
  return [sys.executable, "-m", "scaling.cli", *args]


# A child learns from its environment to stop with its parent and which cores to run on,
# and acts on it itself (`adopt_parent_settings`) once it starts: Python code between fork
# and exec (a `preexec_fn`) can deadlock when the parent has other threads (JAX's thread
# pools, TensorBoard writers), and a parent blocked in `Popen` then waits forever.
_PARENT_PID = "SCALING_PARENT_PID"
_CPU_CORES = "SCALING_CPU_CORES"


def child_environment(env: dict, cores: tuple[int, ...] = ()) -> dict:
  """`env` for a child `scaling` process that gets SIGTERM (checkpoint and stop) if this
  process dies, and that runs on `cores` only (empty: all)."""
  env = {**env, _PARENT_PID: str(os.getpid())}
  if cores:
    env[_CPU_CORES] = ",".join(map(str, cores))
  return env


def adopt_parent_settings() -> None:
  """In a child started with `child_environment`, before JAX starts (its CPU thread pool
  reads the affinity mask once): pin the cores and follow the parent. Its own children
  inherit neither setting."""
  parent, cores = os.environ.pop(_PARENT_PID, None), os.environ.pop(_CPU_CORES, None)
  if cores:
    os.sched_setaffinity(0, {int(c) for c in cores.split(",")})
  if parent is None:
    return
  try:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
  except OSError:  # Not Linux: an orphaned child then runs to its end.
    return
  if os.getppid() != int(parent):  # the parent died before the request above
    os.kill(os.getpid(), signal.SIGTERM)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def tool(name: str) -> str:
  """The path of a SLURM command; a clear error where there is no cluster."""
  path = shutil.which(name)
  if not path:
    raise UserError(f"{name} not found on PATH: this needs a SLURM cluster's commands "
                    "(sbatch, squeue, scontrol); use --executor=local here")
  return path


def call(cmd: list[str], what: str) -> str:
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
  out = call([tool("sbatch"), "--parsable", script_path], "sbatch")
  return out.strip().split(";")[0]


def queue() -> dict[str, str] | None:
  """Job id (`123` or `123_4` for array tasks) -> squeue state of this user's jobs.

  None when squeue cannot answer (the controller may be restarting): nothing is concluded.
  """
  result = subprocess.run([tool("squeue"), "--me", "-h", "-r", "-o", "%i|%T"],
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
