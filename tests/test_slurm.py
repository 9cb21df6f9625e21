"""Sweeps and launches on a real single-node SLURM cluster (Debian's slurm-wlm and munge).

The cluster is started by tools/slurm/start.sh (and stopped again if this session started
it). The slurm executor's table equals the local executor's (the reference sweep of
tests/test_sweep.py, the same trials), a trial whose job gets SIGTERM
requeues and resumes to the same numbers, and re-running the sweep submits nothing.
"""

import concurrent.futures
import json
import os
import shutil
import subprocess
import time

import pytest

from scaling import cli
from tests.helpers import ROOT, cli_args, losses, one_device_env, scaling_cmd, summary
from tests.test_sweep import _status, _table, _write_sweep, reference_sweep

TOOLS = os.path.join(ROOT, "tools", "slurm")
# Poll often and give up in bounded time; jobs get a short limit and grace.
SLURM = ('  s.slurm = {"poll_s": 1.0, "timeout_s": 900.0, "time": "20:00", '
         '"signal_grace_s": 30}')


@pytest.fixture(scope="session")
def slurm_cluster():
  """A running cluster; skipped only where slurmctld cannot be started here."""
  if not shutil.which("slurmctld"):
    pytest.skip(reason="SLURM is not installed (tools/slurm/install.sh needs root and apt)")
  result = subprocess.run(["bash", os.path.join(TOOLS, "start.sh")], capture_output=True,
                          text=True, timeout=180, stdin=subprocess.DEVNULL)
  message = (result.stderr or result.stdout).strip()
  if result.returncode == 2:
    pytest.skip(reason=f"slurmctld cannot start here: {message}")
  assert result.returncode == 0, message
  yield
  if "slurm: started" in result.stdout:  # leave a cluster we found running as it was
    subprocess.run(["bash", os.path.join(TOOLS, "stop.sh")], capture_output=True, timeout=120,
                   stdin=subprocess.DEVNULL)


def _sweep_cmd(path, directory, executor):
  return scaling_cmd("sweep", "run", f"--config={path}", f"--dir={directory}",
                     f"--executor={executor}")


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
  return _write_sweep(tmp_path_factory.mktemp("spec") / "s.py", extra=SLURM)


def _record(directory, size):
  return next((v for v in _status(directory).values() if v.get("size") == size), {})


def _name(directory, size):
  return next(k for k, v in _status(directory).items() if v.get("size") == size)


@pytest.fixture(scope="module")
def sweeps(slurm_cluster, sweep_file, tmp_path_factory):
  """The sweep under the SLURM executor; s2's job gets SIGTERM once it trains.

  Returns (SLURM sweep directory, its stderr, the local executor's sweep directory).
  """
  base = tmp_path_factory.mktemp("sweeps")
  directory = str(base / "slurm")
  # Output to a file: an unread pipe would fill up with progress bars and block the sweep.
  log = open(base / "slurm.err", "w+")
  # One device, as the reference sweep's trials have (the job inherits the environment).
  proc = subprocess.Popen(_sweep_cmd(sweep_file, directory, "slurm"), cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=log, env=one_device_env())
  # The reference is built (or waited for) while the SLURM jobs run.
  with concurrent.futures.ThreadPoolExecutor(1) as pool:
    reference = pool.submit(reference_sweep)
    deadline, signalled = time.time() + 600, None
    while time.time() < deadline and proc.poll() is None and not signalled:
      record = _record(directory, "s2")
      if record.get("state") == "running" and os.path.exists(
          os.path.join(directory, "runs", _name(directory, "s2"), "metrics.jsonl")):
        # What SLURM sends the job's steps before a time limit or a preemption.
        subprocess.run(["scancel", "--signal=TERM", record["job_id"]], check=True)
        signalled = record["job_id"]
      time.sleep(0.05)
  proc.wait(timeout=900)
  log.close()
  err = (base / "slurm.err").read_text()
  assert proc.returncode == 0, err[-3000:]
  assert signalled, "trial s2 finished before it could be signalled"
  return directory, err, reference.result(timeout=900)


def test_slurm_sweep_matches_local_executor(sweeps):
  directory, err, local_sweep = sweeps
  assert "submitted 3 trial(s) as SLURM array job" in err
  records = _status(directory)
  assert {v["size"]: v["state"] for v in records.values()} == {
      "s0": "completed", "s1": "diverged", "s2": "completed"}
  array = {v["job_id"].split("_")[0] for v in records.values()}
  assert len(array) == 1  # one array job, one task per trial
  assert _table(directory) == _table(local_sweep)


def test_sigterm_requeues_trial_and_resumes_from_checkpoint(sweeps):
  directory, _, local_sweep = sweeps
  record = _record(directory, "s2")
  assert record["restarts"] == 1
  with open(os.path.join(directory, "slurm", "results", f"{_name(directory, 's2')}.json")) as f:
    attempts = json.load(f)["attempts"]
  assert [a["state"] for a in attempts] == ["preempted", "completed"]
  assert 0 < attempts[0]["step"] < 120  # stopped partway, with a checkpoint
  run_dir = os.path.join(directory, "runs", _name(directory, "s2"))
  reference = os.path.join(local_sweep, "runs", _name(directory, "s2"))
  assert losses(run_dir) == losses(reference)  # every step, as if never interrupted
  assert summary(run_dir)["final_eval_loss"] == summary(reference)["final_eval_loss"]


def test_rerun_submits_nothing(sweeps, sweep_file):
  directory, _, _ = sweeps
  before = {k: v["job_id"] for k, v in _status(directory).items()}
  scripts = sorted(os.listdir(os.path.join(directory, "slurm")))
  result = subprocess.run(_sweep_cmd(sweep_file, directory, "slurm"), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "nothing to submit" in result.stderr
  assert {k: v["job_id"] for k, v in _status(directory).items()} == before
  assert sorted(os.listdir(os.path.join(directory, "slurm"))) == scripts


def test_missing_sbatch_is_one_clear_line(sweep_file, tmp_path, monkeypatch, capsys):
  monkeypatch.setenv("PATH", str(tmp_path))  # no SLURM commands here
  out = tmp_path / "out"
  assert cli.main(["sweep", "run", f"--config={sweep_file}", f"--dir={out}",
                   "--executor=slurm"]) == 1
  err = capsys.readouterr().err.strip()
  assert err == ("error: sbatch not found on PATH: this needs a SLURM "
                 "cluster's commands (sbatch, squeue, scontrol); use --executor=local here")
  assert not out.exists()
  assert cli.main(["launch", "--slurm", *cli_args(), f"--workdir={out}"]) == 1
  assert capsys.readouterr().err.strip().startswith("error: sbatch not found on PATH")
  assert not out.exists()


def test_launch_slurm_runs_training_as_a_job(slurm_cluster, tmp_path):
  workdir = tmp_path / "run"
  result = subprocess.run(
      scaling_cmd("launch", "--slurm", "--time=10:00", *cli_args("train.steps=4"),
                  f"--workdir={workdir}"), cwd=ROOT, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-3000:]
  job = result.stdout.split("submitted SLURM job ")[1].split(":")[0]
  with open(workdir / "slurm" / "train.sbatch") as f:
    script = f.read()
  assert "#SBATCH --requeue" in script and "#SBATCH --signal=TERM@120" in script
  assert 'scontrol requeue "$SLURM_JOB_ID"' in script
  deadline = time.time() + 300
  while time.time() < deadline and job in subprocess.run(
      ["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout.split():
    time.sleep(0.5)
  assert summary(str(workdir))["status"] == "completed", open(
      workdir / "slurm" / f"run-{job}.out").read()[-3000:]


@pytest.mark.parametrize("state", ["completed", "diverged", "preempted", "failed"])
def test_a_task_that_does_not_requeue_exits_as_the_trainer_would(state, tmp_path, monkeypatch):
  """Outside an array job (nothing to requeue) a task ends with `scaling train`'s exit code
  for its trial's state (`exits.FOR_STATUS`), an error for any other state."""
  import types
  from scaling import exits
  from scaling.sweep import slurm
  trial = types.SimpleNamespace(name="t")
  monkeypatch.setattr(slurm.signal, "signal", lambda *_: None)
  monkeypatch.setattr(slurm.spec_lib, "load_saved", lambda layout: (None, [trial]))
  monkeypatch.setattr(slurm.spec_lib, "eval_request", lambda sweep: None)
  monkeypatch.setattr(slurm.trial_lib, "run_trial",
                      lambda *_: {"state": state, "exit_code": None})
  for name in ("SLURM_ARRAY_JOB_ID", "SLURM_JOB_ID", "SLURM_NTASKS", "SLURM_CPUS_PER_TASK"):
    monkeypatch.delenv(name, raising=False)
  os.makedirs(tmp_path / "slurm" / "results")
  assert slurm.task(str(tmp_path), "t") == exits.FOR_STATUS.get(state, exits.ERROR)
