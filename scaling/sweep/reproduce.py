"""`scaling reproduce RUN_DIR`: train again from the saved config and compare the numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from scaling.config import UserError

EXIT_MISMATCH = 4
# Same config, seed and hardware give the same numbers; allow float noise from a
# different host or thread count.
TOLERANCE = 1e-5


def _read(path: str) -> dict:
  with open(path) as f:
    return json.load(f)


def _numbers(run_dir: str) -> dict[str, float]:
  summary = _read(os.path.join(run_dir, "summary.json"))
  out = {"final_train_loss": summary.get("final_train_loss"),
         "final_eval_loss": summary.get("final_eval_loss"),
         **{k: v for k, v in (summary.get("final_eval") or {}).items()}}
  eval_path = os.path.join(run_dir, "eval.json")
  if os.path.exists(eval_path):
    for task, subsets in _read(eval_path)["tasks"].items():
      if "all" in subsets:  # tasks of many items: their aggregate
        out.update({f"{task}/{m}": v["mean"] for m, v in subsets["all"]["metrics"].items()})
        continue
      for subset, s in subsets.items():  # e.g. image quality per sampler setting
        out.update({f"{task}/{subset}/{m}": v["mean"] for m, v in s["metrics"].items()})
  return out


def reproduce(run_dir: str, workdir: str | None = None) -> int:
  """Re-runs training (and eval, if the original was evaluated); 0 if the numbers match."""
  config_path = os.path.join(run_dir, "config.json")
  if not os.path.exists(config_path):
    raise UserError(f"{run_dir} is not a run directory (no config.json)")
  if not os.path.exists(os.path.join(run_dir, "summary.json")):
    raise UserError(f"{run_dir} has no summary.json: the original run did not finish")
  workdir = workdir or run_dir.rstrip("/") + "-reproduced"
  if os.path.exists(os.path.join(workdir, "config.json")):
    raise UserError(f"{workdir} already holds a run; choose another --workdir")
  cli = [sys.executable, "-m", "scaling.cli"]
  code = subprocess.call([*cli, "train", f"--config={config_path}", f"--workdir={workdir}"])
  if code != 0:
    print(f"reproduction did not complete (exit {code})", file=sys.stderr)
    return code
  eval_path = os.path.join(run_dir, "eval.json")
  if os.path.exists(eval_path):
    meta = _read(eval_path)
    args = [f"--suite={','.join(meta['suites'])}", f"-n={meta['n_per_subset']}",
            *(f"--task={t}" for t in meta.get("task_files", [])),
            *(f"--{k}={v}" for k, v in meta.get("flags", {}).items())]
    code = subprocess.call([*cli, "eval", f"--workdir={workdir}", *args],
                           stdout=subprocess.DEVNULL)
    if code != 0:
      return code
  original, again = _numbers(run_dir), _numbers(workdir)
  ok = True
  print(f"{'quantity':<44} {'original':>14} {'reproduced':>14}")
  for key in sorted(original):
    a, b = original[key], again.get(key)
    same = (a is None and b is None) or (
        a is not None and b is not None and abs(a - b) <= TOLERANCE * max(1.0, abs(a)))
    ok &= same
    print(f"{key:<44} {a!s:>14.14} {b!s:>14.14} {'' if same else '  DIFFERENT'}")
  print(f"{'reproduced: the numbers match' if ok else 'NOT reproduced'} ({workdir})")
  return 0 if ok else EXIT_MISMATCH
