"""`scaling reproduce`: a run re-trained (and re-evaluated) from its config.json gives the
same numbers; a run whose recorded numbers differ is reported with its own exit code."""

import json
import os

import pytest

from scaling import exits
from scaling.sweep import reproduce
from tests.helpers import cli_args, run_cli


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("original"))
  result = run_cli("train", *cli_args("train.steps=20"), f"--workdir={workdir}")
  assert result.returncode == 0, result.stderr[-2000:]
  result = run_cli("eval", f"--workdir={workdir}", "--suite=arithmetic", "-n=10")
  assert result.returncode == 0, result.stderr[-2000:]
  return workdir


def test_reproduced_run_matches(evaluated, tmp_path, capsys):
  assert reproduce.reproduce(evaluated, str(tmp_path / "again")) == 0
  out = capsys.readouterr().out
  assert "final_eval_loss" in out and "arithmetic/exact_match" in out
  assert "the numbers match" in out and "DIFFERENT" not in out


def test_different_numbers_are_reported(evaluated, tmp_path, capsys):
  path = os.path.join(evaluated, "summary.json")
  with open(path) as f:
    summary = json.load(f)
  summary["final_train_loss"] += 0.5  # as if the original had trained differently
  with open(path, "w") as f:
    json.dump(summary, f)
  assert reproduce.reproduce(evaluated, str(tmp_path / "again")) == exits.MISMATCH
  out = capsys.readouterr().out
  assert "NOT reproduced" in out
  assert [line for line in out.splitlines() if "DIFFERENT" in line][0].startswith(
      "final_train_loss")
