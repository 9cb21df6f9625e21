"""One trial of a sweep, as every executor runs it: `scaling train`, then `scaling eval`.

Each is its own process: a crash, a divergence or exhausted memory ends the trial, not the
sweep. The trial's outcome is read from the trainer's exit code (`scaling.exits`).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import time
from typing import Callable, Sequence

from scaling import cluster, exits, files
from scaling.evals.request import EvalRequest

FINAL = ("completed", "diverged")  # a diverged trial would diverge again: not re-run
# Preempted and interrupted trials saved a checkpoint (or, killed by a second Ctrl-C, have
# their last periodic one): neither failed, and the next run of the sweep resumes them.
_TRAIN_STATE = {exits.OK: "trained", exits.DIVERGED: "diverged",
                exits.PREEMPTED: "preempted", exits.INTERRUPTED: "interrupted",
                -signal.SIGINT: "interrupted"}


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
  if "code" in (request.suites or ()):  # other suites do not sample
    args += [f"--samples={request.samples}", f"--temperature={request.temperature}",
             f"--top_p={request.top_p}", f"--seed={request.seed}"]
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


def fork(layout, trial) -> None:
  """Starts a cooldown branch from its trunk's checkpoint at the branch step: the run
  directory then resumes from there as if it had trained the stable phase itself."""
  target = layout.run(trial.name)
  if os.path.isdir(target.checkpoints):
    return  # forked already (the branch may have trained on since)
  source = layout.run(trial.trunk)
  step = str(trial.branch_step)
  if not os.path.isdir(os.path.join(source.checkpoints, step)):
    raise FileNotFoundError(f"trunk {trial.trunk} has no checkpoint at step {step}")
  os.makedirs(target.path, exist_ok=True)
  shutil.copytree(os.path.join(source.checkpoints, step), os.path.join(target.checkpoints, step))
  if os.path.exists(source.tokenizer):
    shutil.copy(source.tokenizer, target.tokenizer)
  kept = [r for r in files.read_jsonl(source.metrics) if r["step"] <= trial.branch_step]
  files.write_atomic(target.metrics, "".join(json.dumps(r) + "\n" for r in kept))


def run_trial(layout, trial, request: EvalRequest, run: Callable[[list[str], str], int],
              launcher: Sequence[str] = (), train_flags: Sequence[str] = ()) -> dict:
  """Trains then evaluates a saved trial; `run(cmd, log_path)` runs a command and returns
  its exit code. Returns the trial's status fields: state, exit_code, the seconds each
  command took (train_s, eval_s) and, unless it completed or diverged, error.

  A branch first forks from its trunk's checkpoint; a trunk is only trained; trials with
  `eval_steps` have those checkpoints scored too, in the same eval process.
  """
  name = trial.name
  config, run_dir, log = layout.trial_config(name), layout.run(name).path, layout.log(name)
  if trial.trunk:
    fork(layout, trial)
  steps = [f"--step={s}" for s in (*trial.eval_steps, "final")] if trial.eval_steps else []
  scoring = [*eval_args(request), *steps]
  # One process trains and scores, unless training runs under a launcher (srun on a
  # cluster: several hosts train, one process scores).
  then_eval = [] if launcher or trial.role == "trunk" else [
      f"--then_eval={shlex.join(scoring)}"]
  started = time.time()
  code = run([*launcher, *cluster.cli_command("train", f"--config={config}",
                                              f"--workdir={run_dir}", *train_flags,
                                              *then_eval)], log)
  times = {"train_s": time.time() - started}
  state = _TRAIN_STATE.get(code, "failed")
  if state == "trained" and (trial.role == "trunk" or then_eval):
    state = "completed"
  elif state == "trained":
    started = time.time()
    code = run(cluster.cli_command("eval", f"--workdir={run_dir}", *scoring), log)
    times["eval_s"] = time.time() - started
    state = {exits.OK: "completed", exits.INTERRUPTED: "interrupted",
             -signal.SIGINT: "interrupted"}.get(code, "failed")
  error = None if state in FINAL else last_error(log)
  return {"state": state, "exit_code": code, "error": error, **times}
