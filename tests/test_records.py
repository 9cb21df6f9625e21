"""A kill never loses data: SIGKILL in every window of a run, or a damaged newest checkpoint,
and the re-run's records (summary.json, metrics.jsonl) equal an uninterrupted run's."""

import glob
import os
import shutil
import subprocess
import sys

import pytest

from scaling import cli, exits
from scaling import config as config_lib
from scaling.errors import UserError
from scaling.train import loop
from tests.helpers import ROOT, records, summary, tiny_config, tiny_dit

WINDOWS = ("before_first_checkpoint", "between_checkpoints", "before_summary")
RUN = ("train.steps=30", "train.log_every=5", "checkpoint.every_steps=10",
       "checkpoint.max_to_keep=5", "eval.every_steps=10")
CONFIGS = {"lm": lambda: tiny_config(*RUN), "dit": lambda: tiny_dit(*RUN)}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def reference(request, tmp_path_factory):
  cfg = CONFIGS[request.param]()
  workdir = str(tmp_path_factory.mktemp(f"uninterrupted-{request.param}"))
  assert loop.train(cfg, workdir) == exits.OK
  return request.param, cfg, workdir


@pytest.mark.parametrize("window", WINDOWS)
def test_kill_in_any_window_then_rerun_gives_the_same_records(reference, window, tmp_path):
  kind, cfg, uninterrupted = reference
  config_path = str(tmp_path / "config.json")
  config_lib.save(cfg, config_path)
  workdir = str(tmp_path / "run")
  result = subprocess.run([sys.executable, "-m", "tests.kill_at", window, config_path, workdir],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == -9, result.stderr[-2000:]  # killed, not finished
  assert not os.path.exists(os.path.join(workdir, "summary.json"))
  assert loop.train(cfg, workdir) == exits.OK
  metrics, record = records(workdir)
  assert [m["step"] for m in metrics] == list(range(5, 31, 5))  # each step logged once
  assert (metrics, record) == records(uninterrupted)
  assert record["final_eval"] and record["final_train_loss"] is not None


def _damage(checkpoint_dir):
  """Overwrites every array file of a checkpoint with garbage (as a full disk might)."""
  paths = [p for p in glob.glob(os.path.join(checkpoint_dir, "state", "**"), recursive=True)
           if os.path.isfile(p) and "metadata" not in os.path.basename(p)]
  assert paths
  for path in paths:
    with open(path, "wb") as f:
      f.write(b"\x00garbage" * 8)


def test_damaged_newest_checkpoint_resumes_from_the_previous_one(reference, tmp_path,
                                                                 warnings_log):
  kind, cfg, uninterrupted = reference
  workdir = str(tmp_path / "run")
  shutil.copytree(uninterrupted, workdir)
  os.remove(os.path.join(workdir, "summary.json"))
  _damage(os.path.join(workdir, "checkpoints", "30"))
  assert loop.train(cfg, workdir) == exits.OK
  assert "checkpoint 30" in warnings_log.text  # named, then moved aside
  assert os.listdir(os.path.join(workdir, "checkpoints.unreadable")) == ["30"]
  assert records(workdir) == records(uninterrupted)  # retrained 20 -> 30 identically


def test_sample_falls_back_or_stops_with_one_line(reference, tmp_path, capsys, warnings_log):
  kind, _, uninterrupted = reference
  workdir = str(tmp_path / "run")
  shutil.copytree(uninterrupted, workdir)
  _damage(os.path.join(workdir, "checkpoints", "30"))
  args = (["--prompt", "12+34="] if kind == "lm" else ["--class", "3", "-n", "2",
                                                       "--steps", "2"])
  assert cli.main(["sample", f"--workdir={workdir}", *args]) == 0
  assert "checkpoint 30" in warnings_log.text
  assert os.path.isdir(os.path.join(workdir, "checkpoints", "30"))  # a reader moves nothing
  for step in (10, 20):
    _damage(os.path.join(workdir, "checkpoints", str(step)))
  assert cli.main(["sample", f"--workdir={workdir}", *args]) == 1
  last = capsys.readouterr().err.strip().splitlines()[-1]
  assert last.startswith("error: no readable checkpoint") and "30, 20, 10" in last


def _truncate(checkpoint_dir):
  """Cuts every array file of a checkpoint to half its length (as a full disk leaves it)."""
  paths = [p for p in glob.glob(os.path.join(checkpoint_dir, "state", "**", "d", "*"),
                                recursive=True) if os.path.isfile(p)]
  assert paths
  for path in paths:
    os.truncate(path, os.path.getsize(path) // 2)


@pytest.mark.parametrize("reference", ["lm"], indirect=True)  # the fallback is shared
def test_sample_falls_back_with_one_warning_line_and_no_library_noise(reference, tmp_path):
  """The whole stderr of `scaling sample` on a run whose newest checkpoint is truncated:
  one `warning:` line (TensorStore's threads report the failed reads once more through
  asyncio, from C++, which only a separate process's stderr shows)."""
  _, _, uninterrupted = reference
  workdir = str(tmp_path / "run")
  shutil.copytree(uninterrupted, workdir)
  _truncate(os.path.join(workdir, "checkpoints", "30"))
  result = subprocess.run([sys.executable, "-m", "scaling.cli", "sample", f"--workdir={workdir}",
                           "--prompt", "123+456=", "--temperature", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.startswith("123+456=")
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("warning: checkpoint 30 in "), result.stderr
  assert "trying an older one" in lines[0]


def test_a_retry_never_marks_a_completed_run_failed(reference, tmp_path):
  """A finished run is not restored again, so checkpoints damaged since cannot fail it."""
  kind, cfg, uninterrupted = reference
  workdir = str(tmp_path / "run")
  shutil.copytree(uninterrupted, workdir)
  for step in (10, 20, 30):
    _damage(os.path.join(workdir, "checkpoints", str(step)))
  assert loop.train(cfg, workdir) == exits.OK
  assert summary(workdir)["status"] == "completed"
  os.remove(os.path.join(workdir, "summary.json"))  # unfinished: it resumes, and fails
  with pytest.raises(UserError, match="no readable checkpoint"):
    loop.train(cfg, workdir)
