"""Bad input never crashes: every mistake a user (or a full or read-only disk) can cause is
one `error:` line naming the field, file or flag, exit code 1, no traceback, and any
existing run directory is left exactly as it was."""

import contextlib
import hashlib
import os
import shutil
import subprocess

import pytest

from scaling import cli, exits
from scaling.train import loop
from tests.helpers import DIT_CONFIG, LM_CONFIG, TINY, cli_args, tiny_config


def tree_hash(directory) -> dict:
  out = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
  return out


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("good"))
  cfg = tiny_config("train.steps=10", "checkpoint.every_steps=5", "train.log_every=5")
  assert loop.train(cfg, workdir) == exits.OK
  return workdir


@pytest.fixture
def copy_of(good_run, tmp_path):
  """A copy of the good run to damage (the original is checked to stay unchanged)."""
  def make():
    target = str(tmp_path / "copy")
    shutil.copytree(good_run, target)
    return target
  return make


def one_error(capsys, argv, *needles) -> str:
  assert cli.main(argv) == 1
  err = capsys.readouterr().err.strip()
  lines = [line for line in err.splitlines() if line.startswith("error:")]
  assert len(lines) == 1, err
  assert "Traceback" not in err
  for needle in needles:
    assert needle in lines[0], lines[0]
  return lines[0]


@contextlib.contextmanager
def tmpfs(path, size: str):
  """A small real file system (for full and read-only disks); skips where mounting is
  not allowed (it needs root)."""
  os.makedirs(path, exist_ok=True)
  mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path],
                           capture_output=True, text=True)
  if mounted.returncode != 0:
    pytest.skip(reason=f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
  try:
    yield path
  finally:
    subprocess.run(["umount", "-l", path], capture_output=True)


def remount_read_only(path):
  subprocess.run(["mount", "-o", "remount,ro", path], check=True)


# --- train --------------------------------------------------------------------------


def test_a_finished_run_run_again_says_so_and_changes_no_file(good_run, capsys):
  before = tree_hash(good_run)
  assert cli.main(["train", *cli_args("train.steps=10", "checkpoint.every_steps=5",
                                      "train.log_every=5"), f"--workdir={good_run}"]) == 0
  err = capsys.readouterr().err
  assert "run already finished at step 10 (summary.json); nothing to do" in err.splitlines()
  assert tree_hash(good_run) == before


def test_the_progress_bar_shows_a_dash_until_the_first_loss(tmp_path, monkeypatch):
  shown = []

  class Bar:
    def __init__(self, *args, **kwargs):
      pass

    def __enter__(self):
      return self

    def __exit__(self, *exc):
      pass

    def update(self, n):
      pass

    def set_postfix(self, **fields):
      shown.append(fields["loss"])

  monkeypatch.setattr(loop, "tqdm", Bar)
  cfg = tiny_config("train.steps=3", "train.log_every=2", "checkpoint.every_steps=0")
  assert loop.train(cfg, str(tmp_path / "run")) == exits.OK
  # Step 2's record is written once step 3 is queued (the host runs a step ahead).
  assert shown[:2] == ["-", "-"] and shown[2] not in ("-", "nan"), shown
  float(shown[2])


def test_unknown_preset(capsys):
  one_error(capsys, ["train", f"--config={LM_CONFIG}:size=s9", "--workdir=/tmp/never"],
            "unknown size 's9'")


def test_corrupt_config_json_to_resume_and_to_sample(good_run, copy_of, capsys):
  before = tree_hash(good_run)
  workdir = copy_of()
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write('{"model": {"kind": ')
  one_error(capsys, ["train", *cli_args("train.steps=10", "checkpoint.every_steps=5",
                                        "train.log_every=5"), f"--workdir={workdir}"],
            "config.json")
  one_error(capsys, ["sample", f"--workdir={workdir}", "--prompt", "1+2="], "config.json")
  assert tree_hash(good_run) == before


def test_workdir_below_a_regular_file(tmp_path, capsys):
  (tmp_path / "file").write_text("")
  one_error(capsys, ["train", *cli_args(), f"--workdir={tmp_path / 'file' / 'run'}"],
            "is a file")


def test_read_only_run_directory(good_run, tmp_path, capsys):
  with tmpfs(str(tmp_path / "ro"), "64m") as mount:
    workdir = os.path.join(mount, "run")
    shutil.copytree(good_run, workdir)
    remount_read_only(mount)
    before = tree_hash(workdir)
    one_error(capsys, ["train", *cli_args("train.steps=20", "checkpoint.every_steps=5",
                                          "train.log_every=5"), f"--workdir={workdir}"],
              "not writable")
    one_error(capsys, ["eval", f"--workdir={workdir}", "-n", "5"], "not writable")
    assert tree_hash(workdir) == before


def library_noise(stderr: str) -> list[str]:
  """Lines of stderr that the libraries underneath printed (tracebacks, their logs)."""
  return [line for line in stderr.splitlines() if any(
      mark in line for mark in ("Traceback", "Task exception", "WARNING", "ERROR", "absl",
                                "Event loop is closed"))]


def test_full_disk_during_an_async_save_is_one_line_and_resumes_once_freed(tmp_path):
  """Room for one checkpoint of the tiny model, not two: the second asynchronous save
  fails in orbax's threads. The run ends with one `error:` line and nothing else from the
  libraries (a process's whole stderr: their tracebacks are printed from C++ threads), the
  first checkpoint stays restorable, and once there is room the same command finishes."""
  from tests.helpers import final_params, run_cli, summary
  args = cli_args("train.steps=10", "checkpoint.every_steps=5", "checkpoint.max_to_keep=1",
                  "train.log_every=5")
  with tmpfs(str(tmp_path / "disk"), "600k") as mount:
    workdir = os.path.join(mount, "run")
    result = run_cli("train", *args, f"--workdir={workdir}")
    assert result.returncode == exits.ERROR, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert lines == [result.stderr.strip().splitlines()[-1]], result.stderr[-3000:]
    assert ("error: checkpoint 10 could not be written" in lines[0]
            and "No space left on device" in lines[0]
            and "the newest complete checkpoint, step 5, is intact" in lines[0]), lines[0]
    assert not library_noise(result.stderr), result.stderr[-3000:]
    assert final_params(workdir)  # step 5 restores

    subprocess.run(["mount", "-o", "remount,size=64m", mount], check=True)
    result = run_cli("train", *args, f"--workdir={workdir}")
    assert result.returncode == exits.OK, result.stderr[-3000:]
    assert summary(workdir)["status"] == "completed" and summary(workdir)["step"] == 10


def test_os_failures_are_recognised_however_they_arrive():
  from scaling.errors import os_failure
  tensorstore = ValueError('RESOURCE_EXHAUSTED: Error writing "x" in OCDBT database: Failed '
                           "to write 3 bytes to file 7: [os_error_code='122']")
  assert os_failure(tensorstore) == "Disk quota exceeded"
  assert os_failure(RuntimeError("Read-only file system: /mnt/run")) == "Read-only file system"
  wrapped = RuntimeError("commit failed")
  wrapped.__cause__ = OSError(28, "No space left on device")
  assert os_failure(wrapped) == "No space left on device"
  assert os_failure(wrapped, follow=False) is None
  assert os_failure(ValueError("shapes (3,) and (4,) differ")) is None


# --- sample -------------------------------------------------------------------------


def test_sample_warns_about_a_prompt_outside_the_training_distribution(good_run, capsys,
                                                                       warnings_log):
  assert cli.main(["sample", f"--workdir={good_run}", "--prompt", "123+456=",
                   "--temperature", "0"]) == 0
  assert not warnings_log.records
  capsys.readouterr()
  assert cli.main(["sample", f"--workdir={good_run}", "--prompt", "12345+6=", "--prompt",
                   "123*456=", "--temperature", "0"]) == 0
  assert capsys.readouterr().out.startswith("12345+6=")  # answered all the same
  lines = [r.getMessage() for r in warnings_log.records]
  assert len(lines) == 2, lines
  assert ("prompt '12345+6=' lies outside what this model was trained on" in lines[0]
          and "5-digit" in lines[0] and "data.max_digits=3" in lines[0]), lines[0]
  assert "'*'" in lines[1] and "data.ops" in lines[1], lines[1]


def test_sample_without_tokenizer(copy_of, capsys):
  workdir = copy_of()
  os.remove(os.path.join(workdir, "tokenizer.model"))
  one_error(capsys, ["sample", f"--workdir={workdir}", "--prompt", "1+2="], "tokenizer.model")


@pytest.mark.parametrize("args, needle", [
    (["--prompt", "1+\udcff="], "not valid UTF-8"),
    (["--prompt", "1+2=", "-n", "0"], "-n must be at least 1"),
    (["--prompt", "1+2=", "--top_p", "0"], "top_p"),
    (["--class", "3"], "--class is for image models"),
    ([], "give --prompt"),
])
def test_bad_sample_flags(good_run, capsys, args, needle):
  before = tree_hash(good_run)
  one_error(capsys, ["sample", f"--workdir={good_run}", *args], needle)
  assert tree_hash(good_run) == before


def test_sample_out_below_a_regular_file(tmp_path, capsys):
  dit = tmp_path / "dit"
  assert cli.main(["train", f"--config={DIT_CONFIG}", f"--workdir={dit}",
                   *(f"--config.{o}" for o in ("model.d_model=16", "model.n_layers=1",
                                               "model.n_heads=2", "model.n_kv_heads=2",
                                               "model.d_ff=32", "train.steps=2",
                                               "train.batch_size=16", "eval.every_steps=0",
                                               "eval.batch_size=64", "eval.max_examples=64",
                                               "diffusion.timesteps=20",
                                               "diffusion.eval_timesteps=(5,)",
                                               "diffusion.sample_steps=2"))]) == 0
  capsys.readouterr()
  (tmp_path / "file").write_text("")
  one_error(capsys, ["sample", f"--workdir={dit}", "--class", "1", "-n", "1",
                     f"--out={tmp_path / 'file' / 'grid.png'}"], "is a file")
  one_error(capsys, ["sample", f"--workdir={dit}", "-n", "0"], "-n must be at least 1")
  one_error(capsys, ["bench", "decode", f"--config={DIT_CONFIG}"], "KV cache")


# --- eval, bench --------------------------------------------------------------------


@pytest.mark.parametrize("args, needle", [
    (["-n", "-5"], "-n must be at least 1"),
    (["-n", "0"], "-n must be at least 1"),
    (["--batch", "0"], "--batch must be at least 1"),
    (["--suite", "arithmetik"], "unknown suite 'arithmetik'"),
    (["--steps", "5"], "for image models"),
    (["--step", "7"], "no checkpoint at step 7"),
])
def test_bad_eval_flags(good_run, capsys, args, needle):
  before = tree_hash(good_run)
  one_error(capsys, ["eval", f"--workdir={good_run}", *args], needle)
  assert tree_hash(good_run) == before


@pytest.mark.parametrize("args, needle", [
    (["train", "--steps", "-1"], "--steps must be at least 0"),
    (["decode", "--new_tokens", "0"], "--new_tokens must be at least 1"),
    (["train", "--json", "/nonexistent-folder/bench.json"], "does not exist"),
])
def test_bad_bench_flags(capsys, args, needle):
  one_error(capsys, ["bench", args[0], f"--config={LM_CONFIG}", *args[1:]], needle)


# --- sweep, plot --------------------------------------------------------------------


def _sweep_file(path, extra=""):
  path.write_text(f'''
import ml_collections

def get_config(arg=None):
  s = ml_collections.ConfigDict()
  s.name = "bad"
  s.base = "{LM_CONFIG}"
  s.sizes = ("s0",)
  s.seeds = (0,)
  s.overrides = {tuple(TINY) + ("train.steps=4",)!r}
  s.eval = ml_collections.ConfigDict({{"suites": "arithmetic", "n": 4}})
{extra}
  return s
''')
  return str(path)


def test_sweep_eval_typo_fails_before_training(tmp_path, capsys):
  path = _sweep_file(tmp_path / "s.py", '  s.eval.suites = "arithmetic,analogie"')
  one_error(capsys, ["sweep", "run", f"--config={path}", f"--dir={tmp_path / 'out'}"],
            "unknown suite 'analogie'")
  assert not (tmp_path / "out").exists()


def test_plot_with_no_completed_trial_and_a_corrupt_table(tmp_path, capsys):
  directory = tmp_path / "sweep"
  directory.mkdir()
  (directory / "results.jsonl").write_text(
      '{"trial": "a", "size": "s0", "seed": 0, "status": "failed", "params": 5000, '
      '"metrics": {}, "chance": {}}\n')
  one_error(capsys, ["plot", str(directory)], "no trial completed")
  (directory / "results.jsonl").write_text('{"trial": "a", "size"\n')
  one_error(capsys, ["plot", str(directory)], "results.jsonl")
  one_error(capsys, ["sweep", "status", str(directory)], "not a sweep directory")


@pytest.mark.parametrize("interrupt", ["ctrl-c", "sweep"])
def test_interrupts_exit_with_the_interrupted_code(interrupt, monkeypatch, capsys):
  """Ctrl-C, and a sweep interrupted while its trials run, exit with `exits.INTERRUPTED`
  (patched here: the CLI must read the constant, not repeat its value)."""
  from scaling.sweep import local
  from scaling.sweep import run as sweep_run

  def stop(*_):
    raise KeyboardInterrupt if interrupt == "ctrl-c" else local.Interrupted("trials stopped")

  monkeypatch.setattr(sweep_run, "run", stop)
  monkeypatch.setattr(exits, "INTERRUPTED", 99)
  assert cli.main(["sweep", "run", "--config=sweep.py"]) == 99
  assert "interrupted" in capsys.readouterr().err
