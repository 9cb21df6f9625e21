"""Two processes x 4 CPU devices (gloo, coordinator on 127.0.0.1), started by
`scaling launch --local=2`, train like one process x 8, and their checkpoints resume with
any number of processes and devices."""

import json
import os
import shutil
import subprocess

import jax
import ml_collections
import pytest

from scaling import exits
from scaling.cluster import free_port
from scaling.train import checkpoint, loop
from tests.helpers import ROOT, cli_args, losses, scaling_cmd, summary, tiny_config

RUN = ("train.steps=8", "checkpoint.every_steps=2", "checkpoint.max_to_keep=10",
       "eval.every_steps=4", "mesh.data=2", "mesh.fsdp=2", "mesh.tensor=2")
# The same run laid out on 4 devices and on 1: the mesh is layout, not the run's identity.
ON_4 = ("mesh.data=1",)
ON_1 = ("mesh.data=1", "mesh.fsdp=1", "mesh.tensor=1")


def _run_two_processes(workdir, *extra, timeout=300):
  """`scaling launch --local=2`: two processes of 4 CPU devices each, joined by a coordinator
  on 127.0.0.1 (the launcher passes each its --coordinator, --num_processes, --process_id)."""
  result = subprocess.run(
      scaling_cmd("launch", "--local=2", "--devices_per_process=4", *cli_args(*RUN, *extra),
                  f"--workdir={workdir}"),
      cwd=ROOT, capture_output=True, text=True, timeout=timeout)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "joined: process 0 of 2, 4 local of 8 devices (cpu)" in result.stderr


def _taken_back_to(source, step, target):
  """A copy of the run in `source` as it stood when checkpoint `step` was its newest (the
  later checkpoints removed; the metrics past it are rewritten on resume)."""
  shutil.copytree(source, target)
  for name in os.listdir(os.path.join(target, "checkpoints")):
    if int(name) > step:
      shutil.rmtree(os.path.join(target, "checkpoints", name))
  return str(target)


def test_two_processes_match_one_and_resume_on_any_layout(tmp_path):
  single = str(tmp_path / "single")
  assert loop.train(tiny_config(*RUN), single) == exits.OK
  multi = str(tmp_path / "multi")
  _run_two_processes(multi)
  expected, got = losses(single), losses(multi)
  assert sorted(got) == list(range(1, 9))
  for step in expected:
    assert abs(got[step] - expected[step]) < 1e-5, (step, got[step], expected[step])
  record = summary(multi)
  assert record["status"] == "completed" and record["process_count"] == 2

  # 2 processes x 4 devices -> 1 process of 4 devices -> 1 process of 1 device -> 2
  # processes again, each resuming from the checkpoint the one before wrote.
  devices = jax.devices()
  on_4 = _taken_back_to(multi, 2, tmp_path / "on_4")
  assert loop.train(tiny_config(*RUN, *ON_4), on_4, devices=devices[:4]) == exits.OK
  on_1 = _taken_back_to(on_4, 4, tmp_path / "on_1")
  assert loop.train(tiny_config(*RUN, *ON_1), on_1, devices=devices[:1]) == exits.OK
  again = _taken_back_to(on_1, 6, tmp_path / "again")
  _run_two_processes(again)
  got = losses(again)
  assert sorted(got) == list(range(1, 9))
  for step in expected:  # equal within float tolerance, not bitwise, across layouts
    assert abs(got[step] - expected[step]) < 1e-5, (step, got[step], expected[step])
  for run in (on_4, on_1, again):  # no healthy checkpoint was taken for a damaged one
    assert not os.path.exists(os.path.join(run, "checkpoints.unreadable"))
  segments = [(s["from_step"], s["to_step"], s["processes"], s["devices"])
              for s in summary(again)["segments"]]
  assert segments == [(0, 8, 2, 8), (2, 8, 1, 4), (4, 8, 1, 1), (6, 8, 2, 8)]


def test_unreachable_coordinator_is_a_clear_error_in_bounded_time(tmp_path):
  import time
  start = time.monotonic()
  result = subprocess.run(
      scaling_cmd("train", *cli_args(*RUN), f"--workdir={tmp_path}",
                  f"--coordinator=127.0.0.1:{free_port()}", "--num_processes=2",
                  "--process_id=1", "--distributed_timeout=3"),
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith("error: coordinator 127.0.0.1:")
  assert "unreachable after 3 s" in result.stderr
  assert time.monotonic() - start < 60
  assert not os.listdir(tmp_path)


def test_partial_distributed_flags_are_rejected(tmp_path):
  result = subprocess.run(scaling_cmd("train", *cli_args(*RUN), f"--workdir={tmp_path}",
                                      "--coordinator=127.0.0.1:1234"),
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode == 1
  assert result.stderr.strip() == (
      "error: --coordinator, --num_processes and --process_id go together")


def test_per_process_positions_that_differ_refuse_another_layout_and_set_nothing_aside(
    tmp_path):
  """Only a pipeline whose processes stand at different places would write this; such a
  checkpoint resumes with its own process count only, and is never called damaged."""
  ckpt = checkpoint.Checkpointer(str(tmp_path / "checkpoints"), ml_collections.ConfigDict(
      dict(every_steps=2, keep_steps=(), max_to_keep=3, async_save=False)),
      unreadable_dir=str(tmp_path / "unreadable"))
  folder = tmp_path / "checkpoints" / "4" / checkpoint.DATA_ITEM
  folder.mkdir(parents=True)
  for p, index in ((0, 4), (1, 5)):
    (folder / f"process_{p}-of-2.json").write_text(json.dumps({"next_index": index}))
  with pytest.raises(checkpoint.LayoutMismatch, match="written by 2 processes whose data "
                     "positions differ; it resumes only with 2 processes"):
    ckpt._restore_newest(ckpt.data_position, [4])
  assert folder.is_dir() and not (tmp_path / "unreadable").exists()
  (folder / "process_1-of-2.json").write_text(json.dumps({"next_index": 4}))
  assert ckpt.data_position(4) == {"next_index": 4}  # positions that agree: any layout
  ckpt.close()
