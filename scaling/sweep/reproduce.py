"""`scaling reproduce RUN_DIR | SWEEP_DIR`: train again from the saved configs and compare.

Same config, seed and fingerprint (`scaling.hardware.fingerprint`: processor and vector
instructions, devices, threads, JAX build, XLA flags) give the same numbers, so on a
matching fingerprint every quantity must agree to float noise. Float rounding differs
between machines, and training near a capability's transition amplifies it, so on a
different fingerprint the verdict is statistical: a quantity passes when the reproduced
value falls within the original's 95% interval, or within the spread of the original
sweep's seeds for that size. Anything else is not reproduced (exit code 4).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess

from scaling import cluster, exits, files
from scaling.errors import UserError
from scaling.numbers import fmt
from scaling.rundir import RunDir
from scaling.sweep import results as results_lib
from scaling.sweep import spec as spec_lib
from scaling.sweep.layout import SweepDir

TOLERANCE = 1e-5  # relative: the same fingerprint allows float noise only


@dataclasses.dataclass
class Quantity:
  value: float | None
  interval: tuple[float, float] | None = None  # the original's 95% interval, if any


def _numbers(run_dir: RunDir) -> dict[str, Quantity]:
  """Final losses, final held-out metrics and every eval.json aggregate of a run."""
  summary = files.read_json(run_dir.summary)
  out = {k: Quantity(summary.get(k)) for k in ("final_train_loss", "final_eval_loss")}
  out.update({k: Quantity(v) for k, v in (summary.get("final_eval") or {}).items()})
  if os.path.exists(run_dir.eval):
    for task, subsets in files.read_json(run_dir.eval)["tasks"].items():
      # Tasks of many items are compared on their aggregate; others subset by subset.
      chosen = {"all": subsets["all"]} if "all" in subsets else subsets
      for subset, s in chosen.items():
        prefix = f"{task}/" if subset == "all" else f"{task}/{subset}/"
        for m, v in s["metrics"].items():
          out[prefix + m] = Quantity(v["mean"], (v["ci_low"], v["ci_high"]))
  return out


def fingerprint_difference(a: dict | None, b: dict | None) -> list[str]:
  """The fields in which two fingerprints differ (a missing one differs in everything)."""
  if not a or not b:
    return ["fingerprint (not recorded)"]
  return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
          if a.get(k) != b.get(k)]


def _same(a: float | None, b: float | None) -> bool:
  if a is None or b is None or isinstance(a, str) or isinstance(b, str):
    return a == b
  return abs(a - b) <= TOLERANCE * max(1.0, abs(a))


def _within(q: Quantity, b, spread: tuple[float, float] | None) -> bool | None:
  """Inside the original's interval or its size's seed spread; None when it has neither
  (a single run's loss), so it cannot be judged."""
  if _same(q.value, b):
    return True
  bounds = [lh for lh in (q.interval, spread) if lh]
  if not bounds:
    return None
  if not isinstance(b, (int, float)):
    return False
  return any(low - 1e-12 <= b <= high + 1e-12 for low, high in bounds)


def compare(original: dict[str, Quantity], again: dict[str, Quantity], *, strict: bool,
            spreads: dict[str, tuple[float, float]] | None = None) -> list[tuple]:
  """Rows (quantity, original, reproduced, ok) for every quantity of the original."""
  spreads = spreads or {}
  rows = []
  for key in sorted(original):
    q, b = original[key], again.get(key, Quantity(None)).value
    ok = _same(q.value, b) if strict else _within(q, b, spreads.get(key))
    rows.append((key, q.value, b, ok))
  return rows


def _print_rows(rows: list[tuple]) -> None:
  print(f"{'quantity':<44} {'original':>14} {'reproduced':>14}")
  flag = {True: "", False: "  DIFFERENT", None: "  (no interval: not judged)"}
  for key, a, b, ok in rows:
    print(f"{key:<44} {fmt(a, 7):>14} {fmt(b, 7):>14} {flag[ok]}")


def _retrain(config_path: str, workdir: str, original: RunDir) -> int:
  """`scaling train` and, if the original was evaluated, `scaling eval` as it was."""
  code = subprocess.call(cluster.cli_command("train", f"--config={config_path}",
                                             f"--workdir={workdir}"))
  if code != exits.OK or not os.path.exists(original.eval):
    return code
  meta = files.read_json(original.eval)
  args = [f"--suite={','.join(meta['suites'])}", f"-n={meta['n_per_subset']}",
          *(f"--task={t}" for t in meta.get("task_files", [])),
          *(f"--{k}={v}" for k, v in meta.get("flags", {}).items())]
  return subprocess.call(cluster.cli_command("eval", f"--workdir={workdir}", *args),
                         stdout=subprocess.DEVNULL)


def _seed_spreads(run_dir: str) -> dict[str, tuple[float, float]]:
  """For a run inside a sweep: each quantity's range over the runs of its size."""
  runs_dir = os.path.dirname(os.path.abspath(run_dir))
  layout = SweepDir(os.path.dirname(runs_dir))
  if os.path.basename(runs_dir) != "runs" or not os.path.exists(layout.index):
    return {}
  index = files.read_json(layout.index)
  name = os.path.basename(os.path.abspath(run_dir))
  size = next((e["size"] for e in index if e["name"] == name), None)
  siblings = [layout.run(e["name"]) for e in index if e["size"] == size]
  return _spreads([_numbers(r) for r in siblings if os.path.exists(r.summary)])


def _spreads(number_sets: list[dict[str, Quantity]]) -> dict[str, tuple[float, float]]:
  out = {}
  for key in set().union(*number_sets) if number_sets else ():
    values = [n[key].value for n in number_sets
              if key in n and isinstance(n[key].value, (int, float))]
    if len(values) >= 2:
      out[key] = (min(values), max(values))
  return out


def _verdict(rows, difference: list[str]) -> int:
  ok = all(r[3] is not False for r in rows) and any(r[3] for r in rows)
  if not difference:
    print("same fingerprint: compared to float noise")
    print("reproduced: the numbers match" if ok else "NOT reproduced: numbers differ on "
          "the same hardware and software")
  else:
    print("different fingerprint (" + "; ".join(difference) + "): judged statistically, "
          "against each number's 95% interval and its size's seed spread")
    print("reproduced within statistical tolerance" if ok else
          "NOT reproduced: numbers outside their intervals and seed spread")
  return exits.OK if ok else exits.MISMATCH


def reproduce(path: str, workdir: str | None = None) -> int:
  """Re-runs a run or a whole sweep (into `workdir`) and compares; 0 if it reproduces."""
  if os.path.exists(SweepDir(path).sweep):
    return reproduce_sweep(path, workdir)
  original = RunDir(path)
  if not os.path.exists(original.config):
    raise UserError(f"{path} is neither a run nor a sweep directory (no config.json or "
                    "sweep.json)")
  if not os.path.exists(original.summary):
    raise UserError(f"{path} has no summary.json: the original run did not finish")
  workdir = workdir or path.rstrip("/") + "-reproduced"
  if os.path.exists(RunDir(workdir).config):
    raise UserError(f"{workdir} already holds a run; choose another --workdir")
  _numbers(original)  # read first: a damaged original fails before training
  code = _retrain(original.config, workdir, original)
  if code != exits.OK:
    print(f"reproduction did not complete (exit {code})")
    return code
  return judge(path, workdir)


def judge(path: str, workdir: str) -> int:
  """Compares a finished reproduction in `workdir` with the original run at `path`:
  bitwise on the same fingerprint, statistically on another; prints the verdict."""
  original, again = RunDir(path), RunDir(workdir)
  difference = fingerprint_difference(files.read_json(original.summary).get("fingerprint"),
                                      files.read_json(again.summary).get("fingerprint"))
  rows = compare(_numbers(original), _numbers(again), strict=not difference,
                 spreads=_seed_spreads(path))
  _print_rows(rows)
  print(f"({workdir})")
  return _verdict(rows, difference)


def reproduce_sweep(directory: str, workdir: str | None = None) -> int:
  """Re-runs every trial of a sweep from its saved configs and compares the tables."""
  from scaling.sweep.local import LocalExecutor
  layout = SweepDir(directory)
  sweep, trials = spec_lib.load_saved(layout)
  target = SweepDir(workdir or directory.rstrip("/") + "-reproduced")
  if os.path.exists(target.sweep):
    raise UserError(f"{target.path} already holds a sweep; choose another --workdir")
  spec_lib.save(sweep, trials, target)
  LocalExecutor(target, spec_lib.eval_request(sweep), max_parallel=sweep.max_parallel,
                device_per_core=sweep.cpu_device_per_core).run(trials)
  results_lib.collect(target, trials)
  numbers = {t.name: _numbers(layout.run(t.name)) for t in trials
             if os.path.exists(layout.run(t.name).summary)}
  all_rows, differences = [], set()
  for t in trials:
    if t.name not in numbers or not os.path.exists(target.run(t.name).summary):
      all_rows.append((f"{t.size}/seed{t.seed}", "finished", "missing", False))
      continue
    spreads = _spreads([numbers[u.name] for u in trials if u.size == t.size
                        and u.name in numbers])
    difference = fingerprint_difference(
        files.read_json(layout.run(t.name).summary).get("fingerprint"),
        files.read_json(target.run(t.name).summary).get("fingerprint"))
    differences.update(difference)
    rows = compare(numbers[t.name], _numbers(target.run(t.name)), strict=not difference,
                   spreads=spreads)
    all_rows += [(f"{t.size}/seed{t.seed}/{k}", a, b, ok) for k, a, b, ok in rows]
  _print_rows(all_rows)
  print(f"({target.path})")
  return _verdict(all_rows, sorted(differences))
