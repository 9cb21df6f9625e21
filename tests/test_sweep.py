"""Sweeps: expansion, bad specs, a killed sweep resumes to the same table, failures recorded."""

import json
import os
import pathlib
import signal
import subprocess
import time

import pytest

from scaling import cli
from scaling.sweep import spec
from tests.helpers import (LM_CONFIG, ROOT, add_default_field, built_once, one_device_children,
                           one_device_env, scaling_cmd)

DATA = ("data.num_train=3000", "data.num_eval=64", "train.batch_size=16",
        "train.warmup_steps=5", "train.log_every=10", "eval.every_steps=0",
        "eval.max_examples=64")


def _write_sweep(path, *, sizes=("s0", "s1", "s2"), seeds=(0,), steps=120, extra=""):
  path.write_text(f'''
import ml_collections

def get_config(arg=None):
  s = ml_collections.ConfigDict()
  s.name = "tiny"
  s.base = "{LM_CONFIG}"
  s.sizes = {tuple(sizes)!r}
  s.seeds = {tuple(seeds)!r}
  s.overrides = {DATA + (f"train.steps={steps}", "checkpoint.every_steps=40")!r}
  s.size_overrides = {{"s1": ("train.learning_rate=1e30", "train.warmup_steps=0")}}
  s.tokens_per_param = 0
  s.eval = ml_collections.ConfigDict({{"suites": "arithmetic", "n": 20}})
  s.headline = ("arithmetic", "+3d")
{extra}
  return s
''')
  return str(path)


def _status(directory):
  path = os.path.join(directory, "status.json")
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def _table(directory):
  with open(os.path.join(directory, "results.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  for r in rows:
    r.pop("wall_time_s")
  return rows


def test_trials_expand_sizes_and_seeds(tmp_path):
  sweep = spec.load(_write_sweep(tmp_path / "s.py", seeds=(0, 1)))
  trials = spec.trials(sweep)
  assert [(t.size, t.seed) for t in trials] == [
      ("s0", 0), ("s0", 1), ("s1", 0), ("s1", 1), ("s2", 0), ("s2", 1)]
  assert len({t.name for t in trials}) == 6
  assert trials[0].params < trials[2].params < trials[4].params
  # Seeds change only the initialisation: every trial reads the same data.
  assert len({json.dumps(t.cfg.data.to_dict(), sort_keys=True) for t in trials}) == 1
  assert trials[2].cfg.train.learning_rate == 1e30


def test_target_params_rule_and_token_budget(tmp_path):
  path = _write_sweep(tmp_path / "s.py", extra="  s.sizes = ()\n  s.target_params = (2e4, 2e5)\n"
                      "  s.tokens_per_param = 20\n  s.size_overrides = {}")
  trials = spec.trials(spec.load(path))
  for t, target in zip(trials, (2e4, 2e5)):
    from scaling.models import counting
    n = counting.lm_params(t.cfg.model, t.cfg.data.vocab_size).non_embedding
    assert 0.5 * target < n < 2 * target
    tokens = t.cfg.train.steps * t.cfg.train.batch_size * t.cfg.data.seq_len
    assert tokens >= 20 * t.params


@pytest.mark.parametrize("extra, message", [
    ("  s.colour = 'red'", "unknown sweep field: colour"),
    ("  s.sizes = ()", "give exactly one non-empty ladder"),
    ("  s.seeds = ()", "sweep.seeds"),
    ("  s.sizes = ('s0', 's1', 's99')", "unknown size 's99'"),
    ("  s.size_overrides = {'s9': ('seed=1',)}", "not on the ladder"),
    ("  s.overrides = ('mesh.tensor=8',)", "trial s0 seed 0: config.mesh"),
    ("  s.sizes = ()\n  s.target_params = (3e4,)\n  s.size_overrides = {}\n"
     "  s.overrides = ('mesh.tensor=8',)", "not divisible by mesh axes"),
])
def test_bad_specs_fail_before_training(tmp_path, capsys, extra, message):
  path = _write_sweep(tmp_path / "s.py", extra=extra)
  out = tmp_path / "out"
  assert cli.main(["sweep", "run", f"--config={path}", f"--dir={out}"]) == 1
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and message in err, err
  assert not out.exists()


def reference_sweep() -> str:
  """The directory of `_write_sweep`'s sweep run once, one trial at a time (shared with
  the SLURM tests, which compare their executor's table to it)."""
  def build(base):
    os.makedirs(base)
    path = _write_sweep(pathlib.Path(base) / "s.py")
    result = subprocess.run(scaling_cmd("sweep", "run", f"--config={path}",
                                        f"--dir={os.path.join(base, 'out')}"),
                            cwd=ROOT, capture_output=True, text=True, env=one_device_env())
    assert result.returncode == 0, result.stderr[-3000:]
  return os.path.join(built_once("reference-sweep", build), "out")


@pytest.fixture(scope="module")
def uninterrupted():
  directory = reference_sweep()
  return directory, os.path.join(os.path.dirname(directory), "s.py")


def test_failed_trial_is_recorded_and_others_complete(uninterrupted):
  directory, _ = uninterrupted
  states = {v["size"]: v["state"] for v in _status(directory).values()}
  assert states == {"s0": "completed", "s1": "diverged", "s2": "completed"}
  rows = {r["size"]: r for r in _table(directory)}
  assert rows["s1"]["status"] == "diverged" and not rows["s1"]["metrics"]
  assert "arithmetic/+3d/exact_match" in rows["s2"]["metrics"]
  assert os.path.exists(os.path.join(directory, "results.csv"))


def test_a_field_added_with_its_default_leaves_a_finished_sweep_finished(uninterrupted, tmp_path,
                                                                         monkeypatch):
  """A sweep saved before a config field was added (here: a new default in the LM family's
  base config) keeps its run names, so running it again trains nothing."""
  import shutil
  from scaling.sweep.layout import SweepDir
  directory, path = uninterrupted
  layout = SweepDir(str(tmp_path / "out"))
  shutil.copytree(directory, layout.path)
  saved = [entry["name"] for entry in json.loads(pathlib.Path(layout.index).read_text())]
  trained = {n: os.path.getmtime(layout.run(n).summary) for n in saved}
  add_default_field(monkeypatch, "model", "new_knob", 0)
  assert [t.name for t in spec.trials(spec.load(path))] == saved
  assert cli.main(["sweep", "run", f"--config={path}", f"--dir={layout.path}"]) == 0
  assert {n: os.path.getmtime(layout.run(n).summary) for n in saved} == trained
  assert json.loads(pathlib.Path(layout.trial_config(saved[0])).read_text())["model"][
      "new_knob"] == 0


def _flat(value, path=""):
  """{path: leaf} of nested rows, lists and dicts."""
  if isinstance(value, dict):
    return {k: v for key, item in value.items() for k, v in _flat(item, f"{path}/{key}").items()}
  if isinstance(value, list):
    return {k: v for i, item in enumerate(value) for k, v in _flat(item, f"{path}[{i}]").items()}
  return {path: value}


def _assert_same_table(table, reference):
  """Equal tables, floats to 1e-5: a trial pinned to one core runs XLA's single-threaded
  Eigen kernels, which sum in another order than the two-thread ones (about 1e-6
  measured); everything else is exact."""
  got, want = _flat(table), _flat(reference)
  assert got.keys() == want.keys()
  for key, value in want.items():
    if isinstance(value, float):
      assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-5), key
    else:
      assert got[key] == value, key


def _processes_in(directory):
  """Processes whose command line names `directory` (the sweep's trials)."""
  found = []
  for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
      with open(f"/proc/{pid}/cmdline", "rb") as f:
        if directory.encode() in f.read():
          found.append(int(pid))
    except OSError:  # ended meanwhile
      pass
  return found


def test_killed_parallel_sweep_resumes_to_the_sequential_table(uninterrupted, tmp_path):
  """Two trials at a time, each pinned to its own core, largest first, killed while its
  largest trial (s2) trains and run again: the table equals the one-at-a-time sweep's, the
  trial that diverged while another ran is recorded, and no finished trial is trained
  again."""
  path = _write_sweep(tmp_path / "s.py", extra="  s.max_parallel = 2")
  directory = str(tmp_path / "out")
  proc = subprocess.Popen(scaling_cmd("sweep", "run", f"--config={path}", f"--dir={directory}"),
                          cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          env=one_device_env())
  # Kill the executor once s1 has diverged and the largest trial (s2) has a checkpoint
  # before its last step, so it is still training.
  deadline = time.time() + 600
  s2_run, newest = None, None
  while time.time() < deadline and proc.poll() is None:
    status = _status(directory)
    running = [k for k, v in status.items() if v["size"] == "s2" and v["state"] == "running"]
    diverged = any(v["size"] == "s1" and v["state"] == "diverged" for v in status.values())
    if running:
      s2_run = os.path.join(directory, "runs", running[0])
      newest = max((step for step in (40, 80) if os.path.exists(
          os.path.join(s2_run, "checkpoints", str(step), "_CHECKPOINT_METADATA"))), default=None)
      if diverged and newest:
        break
    time.sleep(0.05)
  assert proc.poll() is None and s2_run, "the sweep ended before it could be killed"
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  # The orphaned trials are told to stop (SIGTERM): one that trains saves a checkpoint and
  # its summary; one still starting up just ends.
  deadline = time.time() + 120
  while time.time() < deadline and _processes_in(directory):
    time.sleep(0.1)
  assert not _processes_in(directory)
  with open(os.path.join(s2_run, "summary.json")) as f:
    s2_status = json.load(f)["status"]
  # Killed at checkpoint 40, s2 has 80 steps left: SIGTERM lands first, and it saves and
  # stops. At checkpoint 80 (s1 was recorded late) its last 40 steps can finish first.
  assert s2_status == "preempted" or (newest == 80 and s2_status == "completed"), \
      (newest, s2_status)
  finished = {os.path.join(directory, "runs", k, "summary.json")
              for k, v in _status(directory).items() if v["state"] in ("completed", "diverged")}
  assert any("arithmetic-s1" in f for f in finished)  # diverged while s2 trained beside it
  mtimes = {f: os.path.getmtime(f) for f in finished}

  result = subprocess.run(scaling_cmd("sweep", "run", f"--config={path}", f"--dir={directory}"),
                          cwd=ROOT, capture_output=True, text=True, env=one_device_env())
  assert result.returncode == 0, result.stderr[-3000:]
  assert {f: os.path.getmtime(f) for f in finished} == mtimes  # not trained again
  states = {v["size"]: v["state"] for v in _status(directory).values()}
  assert states == {"s0": "completed", "s1": "diverged", "s2": "completed"}
  _assert_same_table(_table(directory), _table(uninterrupted[0]))


def test_ctrl_c_lets_the_running_trial_save_then_the_sweep_continues(uninterrupted, tmp_path,
                                                                   monkeypatch):
  """Ctrl-C on `scaling sweep run`: the running trial saves a checkpoint and is recorded
  `interrupted` (not failed), the sweep exits 130 with one line, and the same command
  finishes the trial to the uninterrupted sweep's row."""
  path = _write_sweep(tmp_path / "s.py", sizes=("s0",), extra="  s.size_overrides = {}")
  directory = str(tmp_path / "out")
  proc = subprocess.Popen(scaling_cmd("sweep", "run", f"--config={path}", f"--dir={directory}"),
                          cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          env=one_device_env())
  # Signalled once the trial has logged its first steps: far from its end (120 steps and
  # an eval), whereas an async checkpoint's metadata can appear only as the run finishes.
  deadline, run_dir = time.time() + 300, None
  while time.time() < deadline and proc.poll() is None:
    if (names := list(_status(directory))):
      run_dir = os.path.join(directory, "runs", names[0])
      metrics = os.path.join(run_dir, "metrics.jsonl")
      if os.path.exists(metrics) and os.path.getsize(metrics) > 0:
        break
    time.sleep(0.05)
  assert proc.poll() is None and run_dir, proc.stderr.read()[-3000:]
  proc.send_signal(signal.SIGINT)
  assert proc.wait(timeout=120) == 130
  err = proc.stderr.read()
  said = [line.strip() for line in err.splitlines() if "interrupt" in line or "error" in line]
  assert said == ["sweep interrupted: the running trials saved a checkpoint; run the same "
                  "command to continue"], err[-3000:]
  (record,) = _status(directory).values()
  assert record["state"] == "interrupted" and "error" not in record, record
  with open(os.path.join(run_dir, "summary.json")) as f:
    stopped = json.load(f)
  assert stopped["status"] == "interrupted"
  assert os.path.isdir(os.path.join(run_dir, "checkpoints", str(stopped["step"])))

  one_device_children(monkeypatch)  # the trial's devices, as before
  assert cli.main(["sweep", "run", f"--config={path}", f"--dir={directory}"]) == 0
  assert [v["state"] for v in _status(directory).values()] == ["completed"]
  reference = [r for r in _table(uninterrupted[0]) if r["size"] == "s0"]
  _assert_same_table(_table(directory), reference)


def test_parallel_trials_start_largest_first_and_let_their_size_compile_once(tmp_path):
  """Beside a trial that has not logged its first step, a trial of another size starts
  rather than one of the same size, which would compile the same programs at once instead
  of reading them from the compilation cache; with no other size left it starts anyway."""
  from scaling.sweep import local
  from scaling.sweep.layout import SweepDir
  trials = spec.trials(spec.load(_write_sweep(tmp_path / "s.py", seeds=(0, 1))))
  layout = SweepDir(str(tmp_path / "out"))
  executor = local.LocalExecutor(layout, spec.eval_request(spec.load(str(tmp_path / "s.py"))),
                                 max_parallel=2)
  todo, running = local.largest_first(trials), []
  assert [(t.size, t.seed) for t in todo] == [
      ("s2", 0), ("s2", 1), ("s1", 0), ("s1", 1), ("s0", 0), ("s0", 1)]
  started = lambda: (lambda t: (t.size, t.seed))(executor._next(todo, running))
  assert started() == ("s2", 0)
  assert started() == ("s1", 0)  # s2 seed 0 is compiling
  running.remove(next(t for t in running if t.size == "s1"))  # s1 seed 0 ended
  metrics = layout.run(running[0].name).metrics
  os.makedirs(os.path.dirname(metrics))
  with open(metrics, "w") as f:
    f.write(json.dumps({"step": 10, "loss": 1.0}) + "\n")  # s2 seed 0 has stepped
  assert started() == ("s2", 1)
  assert started() == ("s1", 1)
  running.clear()
  assert started() == ("s0", 0)
  assert started() == ("s0", 1)  # only its own size is left: it starts beside it
  assert executor._next(todo, running) is None


@pytest.mark.slow
def test_reproduce_a_whole_sweep(uninterrupted, tmp_path, capsys, monkeypatch):
  directory, _ = uninterrupted
  one_device_children(monkeypatch)  # the reference's devices
  again = str(tmp_path / "again")
  assert cli.main(["reproduce", directory, f"--workdir={again}"]) == 0
  out = capsys.readouterr().out
  assert "same fingerprint" in out and "reproduced: the numbers match" in out
  assert _table(again) == _table(directory)
