"""One trial of a sweep, as every executor runs it: `scaling train`, then `scaling eval`.

Each is its own process: a crash, a divergence or exhausted memory ends the trial, not the
sweep. The trial's outcome is read from the trainer's exit code (`scaling.exits`).
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

from scaling import cluster, exits
from scaling.families import EvalRequest

FINAL = ("completed", "diverged")  # a diverged trial would diverge again: not re-run
_TRAIN_STATE = {exits.OK: "trained", exits.DIVERGED: "diverged",
                exits.PREEMPTED: "preempted"}


def eval_args(request: EvalRequest) -> list[str]:
  """`scaling eval` flags that make the request."""
  args = [] if request.suites is None else [f"--suite={','.join(request.suites)}"]
  args += [f"--task={t}" for t in request.task_files]
  if request.n is not None:
    args.append(f"-n={request.n}")
  args.append(f"--batch={request.batch}")
  for flag, value in (("sampler", request.samplers), ("steps", request.steps),
                      ("guidance", request.guidance)):
    if value is not None:
      args.append(f"--{flag}={value}")
  return args


def last_error(log_path: str) -> str:
  """The line of a trial's log that says what went wrong (or its last line)."""
  try:
    with open(log_path, errors="replace") as f:
      lines = [line.strip() for line in f if line.strip()]
  except OSError:
    return "(no log)"
  errors = [line for line in lines if line.startswith("error:") or "Error" in line]
  return (errors or lines or ["(no output)"])[-1][:500]


def run_trial(layout, name: str, request: EvalRequest, run: Callable[[list[str], str], int],
              launcher: Sequence[str] = (), train_flags: Sequence[str] = ()) -> dict:
  """Trains then evaluates a saved trial; `run(cmd, log_path)` runs a command and returns
  its exit code. Returns the trial's status fields: state, exit_code, the seconds each
  command took (train_s, eval_s) and, unless it completed or diverged, error."""
  config, run_dir, log = layout.trial_config(name), layout.run(name).path, layout.log(name)
  started = time.time()
  code = run([*launcher, *cluster.cli_command("train", f"--config={config}",
                                              f"--workdir={run_dir}", *train_flags)], log)
  times = {"train_s": time.time() - started}
  state = _TRAIN_STATE.get(code, "failed")
  if state == "trained":
    started = time.time()
    code = run(cluster.cli_command("eval", f"--workdir={run_dir}", *eval_args(request)), log)
    times["eval_s"] = time.time() - started
    state = "completed" if code == exits.OK else "failed"
  error = None if state in FINAL else last_error(log)
  return {"state": state, "exit_code": code, "error": error, **times}
