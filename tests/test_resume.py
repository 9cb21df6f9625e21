"""Resume is exact after SIGKILL; SIGTERM saves a checkpoint and exits with the preempted
code, Ctrl-C (SIGINT) saves one and exits with the interrupted code."""

import os
import signal
import subprocess
import time

import numpy as np
import pytest

from scaling import exits
from scaling.train import loop
from tests.helpers import (ROOT, cli_args, final_params, losses, records, scaling_cmd, summary,
                           tiny_config)

RUN = ("train.steps=240", "checkpoint.every_steps=40", "checkpoint.max_to_keep=10")


def _start(workdir):
  return subprocess.Popen(scaling_cmd("train", *cli_args(*RUN), f"--workdir={workdir}"),
                          cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)


def _wait_for_checkpoint(proc, workdir, timeout=240):
  """Blocks until the first checkpoint is committed (its step folder has its final name)."""
  first = os.path.join(workdir, "checkpoints", "40")
  deadline = time.time() + timeout
  while time.time() < deadline:
    if os.path.isdir(first) and os.path.exists(os.path.join(first, "_CHECKPOINT_METADATA")):
      return
    if proc.poll() is not None:
      pytest.fail(f"run ended before its first checkpoint: {proc.stderr.read()[-2000:]}")
    time.sleep(0.02)
  proc.kill()
  pytest.fail("no checkpoint appeared in time")


def _train(workdir):
  """The same run in this process (the killed ones are subprocesses: a real signal)."""
  assert loop.train(tiny_config(*RUN), workdir) == exits.OK


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("uninterrupted"))
  _train(workdir)
  return workdir


def test_resume_after_sigkill_is_exact(uninterrupted, tmp_path):
  workdir = str(tmp_path)
  proc = _start(workdir)
  _wait_for_checkpoint(proc, workdir)
  assert proc.poll() is None, "the run finished before it could be killed"
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not os.path.exists(os.path.join(workdir, "summary.json"))

  _train(workdir)
  expected, got = losses(uninterrupted), losses(workdir)
  assert sorted(got) == list(range(1, 241))  # each step logged once, none lost
  assert got == expected  # bit-for-bit, every step
  reference, resumed = final_params(uninterrupted), final_params(workdir)
  assert reference.keys() == resumed.keys()
  for name in reference:
    np.testing.assert_array_equal(resumed[name], reference[name], err_msg=name)
  assert summary(workdir)["final_train_loss"] == summary(uninterrupted)["final_train_loss"]


def test_sigterm_checkpoints_and_exits_preempted(uninterrupted, tmp_path):
  workdir = str(tmp_path)
  proc = _start(workdir)
  _wait_for_checkpoint(proc, workdir)
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=120) == exits.PREEMPTED
  record = summary(workdir)
  assert record["status"] == "preempted"
  stopped_at = record["step"]
  assert 40 <= stopped_at < 240
  # The checkpoint of the step it stopped at was written before exiting.
  assert os.path.isdir(os.path.join(workdir, "checkpoints", str(stopped_at)))

  _train(workdir)
  assert summary(workdir)["status"] == "completed"
  assert losses(workdir) == losses(uninterrupted)


def test_ctrl_c_saves_says_so_and_the_rerun_equals_an_uninterrupted_run(uninterrupted,
                                                                        tmp_path):
  workdir = str(tmp_path)
  proc = _start(workdir)
  _wait_for_checkpoint(proc, workdir)
  proc.send_signal(signal.SIGINT)
  assert proc.wait(timeout=120) == exits.INTERRUPTED
  err = proc.stderr.read()
  record = summary(workdir)
  assert record["status"] == "interrupted"
  stopped_at = record["step"]
  assert 40 <= stopped_at < 240
  assert os.path.isdir(os.path.join(workdir, "checkpoints", str(stopped_at)))
  said = [line for line in err.splitlines() if "interrupt" in line or "error" in line]
  assert said == [f"interrupted at step {stopped_at}; checkpoint saved; run the same "
                  "command to continue"], err[-2000:]
  assert "Traceback" not in err

  _train(workdir)
  assert records(workdir) == records(uninterrupted)  # every metric of every step, bit for bit
  assert [(s["from_step"], s["to_step"]) for s in summary(workdir)["segments"]] == [
      (0, stopped_at), (stopped_at, 240)]


def test_a_second_ctrl_c_ends_the_run_at_once(monkeypatch):
  """The first SIGINT asks for a stop at the next step; the second gets the default
  handler, which ends the process even inside a long compilation."""
  handlers = {}
  monkeypatch.setattr(signal, "signal", lambda s, h: handlers.__setitem__(s, h))
  with loop.Preemption(sync_every=10) as preemption:
    handlers[signal.SIGINT](signal.SIGINT, None)
    assert preemption.should_stop(3) and preemption.status == "interrupted"
    assert handlers[signal.SIGINT] is signal.SIG_DFL
    handlers[signal.SIGTERM](signal.SIGTERM, None)  # a later SIGTERM changes nothing
    assert preemption.status == "interrupted"


def test_sigterm_at_an_already_saved_step_exits_preempted(tmp_path, monkeypatch):
  """SIGTERM just after a periodic save (here: before the first step after a resume)
  must not save that step again; the run ends preempted with its checkpoint intact."""
  import shutil
  from tests.helpers import tiny_config
  cfg = tiny_config("train.steps=8", "checkpoint.every_steps=4", "checkpoint.async_save=False")
  workdir = str(tmp_path / "run")
  assert loop.train(cfg, workdir) == exits.OK
  shutil.rmtree(os.path.join(workdir, "checkpoints", "8"))
  os.remove(os.path.join(workdir, "summary.json"))  # unfinished: it resumes from step 4
  # The signal has arrived by the time the loop first looks.
  monkeypatch.setattr(loop.Preemption, "should_stop", lambda self, step: True)
  assert loop.train(cfg, workdir) == exits.PREEMPTED
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4"]
  assert summary(workdir)["status"] == "preempted" and summary(workdir)["step"] == 4
