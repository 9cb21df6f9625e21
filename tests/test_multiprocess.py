"""Two processes x 4 CPU devices (gloo, coordinator on 127.0.0.1), started by
`scaling launch --local=2`, train and resume like one process x 8."""

import os
import shutil
import subprocess

from scaling import exits
from scaling.cluster import free_port
from scaling.train import loop
from tests.helpers import ROOT, cli_args, losses, scaling_cmd, summary, tiny_config

RUN = ("train.steps=6", "checkpoint.every_steps=3", "eval.every_steps=3",
       "mesh.data=2", "mesh.fsdp=2", "mesh.tensor=2")


def _run_two_processes(workdir, *extra, timeout=300):
  """`scaling launch --local=2`: two processes of 4 CPU devices each, joined by a coordinator
  on 127.0.0.1 (the launcher passes each its --coordinator, --num_processes, --process_id)."""
  result = subprocess.run(
      scaling_cmd("launch", "--local=2", "--devices_per_process=4", *cli_args(*RUN, *extra),
                  f"--workdir={workdir}"),
      cwd=ROOT, capture_output=True, text=True, timeout=timeout)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "joined: process 0 of 2, 4 local of 8 devices (cpu)" in result.stderr


def test_two_processes_match_one_and_resume(tmp_path):
  single = str(tmp_path / "single")
  assert loop.train(tiny_config(*RUN), single) == exits.OK
  multi = str(tmp_path / "multi")
  _run_two_processes(multi)
  expected, got = losses(single), losses(multi)
  assert sorted(got) == list(range(1, 7))
  for step in expected:
    assert abs(got[step] - expected[step]) < 1e-5, (step, got[step], expected[step])
  record = summary(multi)
  assert record["status"] == "completed" and record["process_count"] == 2
  # Resume from the checkpoint the two processes wrote at step 3 (each process restores
  # its own data-iterator position).
  resumed = str(tmp_path / "resumed")
  shutil.copytree(os.path.join(multi, "checkpoints"), os.path.join(resumed, "checkpoints"))
  shutil.rmtree(os.path.join(resumed, "checkpoints", "6"))
  _run_two_processes(resumed)
  got_resumed = losses(resumed)
  assert sorted(got_resumed) == [4, 5, 6]
  for step in got_resumed:
    assert abs(got_resumed[step] - expected[step]) < 1e-5, step


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
