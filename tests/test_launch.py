"""`scaling launch`: mesh mismatches; printed TPU/GKE commands."""

import os
import subprocess

import pytest
import yaml

from scaling import cli
from tests.helpers import LM_CONFIG, ROOT, cli_args, scaling_cmd
from tests.test_multiprocess import RUN


def _launch(*args, timeout=600):
  return subprocess.run(scaling_cmd("launch", "--local=2", "--devices_per_process=4", *args),
                        cwd=ROOT, capture_output=True, text=True, timeout=timeout)


# Two launched processes training and resuming like one: tests/test_multiprocess.py.


@pytest.mark.parametrize("mesh, message", [
    (("mesh.data=2", "mesh.fsdp=1", "mesh.tensor=2"),
     "error: config.mesh: data*fsdp*tensor = 2*1*2 = 4 but 2 processes x 4 devices = 8 "
     "devices take part"),
    (("mesh.data=1", "mesh.fsdp=1", "mesh.tensor=8"),
     "error: config.mesh: the batch is split 1 way(s) (mesh axes of 'batch'), not a multiple "
     "of the 2 processes; give the data or fsdp axis a multiple of 2"),
], ids=["devices", "batch_split"])
def test_process_count_not_matching_mesh_is_one_line(tmp_path, mesh, message):
  result = _launch(*cli_args(*RUN, *mesh), f"--workdir={tmp_path / 'run'}", timeout=300)
  assert result.returncode == 1
  lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
  assert lines == [message], result.stderr[-3000:]
  assert not (tmp_path / "run").exists()


def test_tpu_prints_the_gcloud_command(capsys):
  assert cli.main(["launch", "--tpu=slice-1", "--zone=us-central2-b", "--project=lab",
                   "--config=configs/lm/arithmetic.py:size=s5", "--workdir=/mnt/runs/s5",
                   "--config.train.steps=3000"]) == 0
  assert capsys.readouterr().out == (
      "gcloud compute tpus tpu-vm ssh slice-1 --zone us-central2-b --project lab --worker=all "
      "--command 'cd ~/scaling && scaling train --config=configs/lm/arithmetic.py:size=s5 "
      "--workdir=/mnt/runs/s5 --config.train.steps=3000 --distributed'\n")


def test_gke_prints_a_jobset(capsys):
  assert cli.main(["launch", "--gke=lm", "--image=registry/scaling:1", "--nodes=4",
                   "--tpu_type=tpu-v5-lite-podslice", "--tpu_topology=4x4",
                   f"--config={LM_CONFIG}", "--workdir=/data/run"]) == 0
  out = capsys.readouterr().out
  assert out.startswith("kubectl apply -f - <<'EOF'\n") and out.endswith("EOF\n")
  jobset = yaml.safe_load(out.split("\n", 1)[1].rsplit("EOF", 1)[0])
  job = jobset["spec"]["replicatedJobs"][0]["template"]["spec"]
  assert job["completions"] == job["parallelism"] == 4
  pod = job["template"]["spec"]
  assert pod["nodeSelector"]["cloud.google.com/gke-tpu-topology"] == "4x4"
  container = pod["containers"][0]
  assert container["resources"]["limits"] == {"google.com/tpu": 4}
  command = container["command"][2]
  assert "--coordinator=lm-workers-0-0.lm:8476 --num_processes=4" in command
  assert command.endswith('--process_id="$JOB_COMPLETION_INDEX"')


def test_launch_bad_flags_are_one_line(capsys):
  assert cli.main(["launch", "--tpu=x", f"--config={LM_CONFIG}", "--workdir=w"]) == 1
  assert capsys.readouterr().err.strip() == (
      "error: --tpu needs --zone (the TPU VM's zone, e.g. us-central2-b)")
  assert not os.path.exists("w")
