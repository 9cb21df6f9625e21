"""`scaling reproduce`: a run re-trained (and re-evaluated) from its config.json gives the
same numbers; a run whose recorded numbers differ is reported with its own exit code.

The run is re-trained once (`reproduced`); the verdicts on copies of the original whose
records were changed judge them against that one reproduction, as `reproduce` would."""

import json
import os

import pytest

from scaling import exits
from scaling.sweep import reproduce
from tests.helpers import cli_args, one_device_children, one_device_env, run_cli


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("original"))
  result = run_cli("train", *cli_args("train.steps=20"), f"--workdir={workdir}",
                   env=one_device_env())
  assert result.returncode == 0, result.stderr[-2000:]
  result = run_cli("eval", f"--workdir={workdir}", "--suite=arithmetic", "-n=10",
                   env=one_device_env())
  assert result.returncode == 0, result.stderr[-2000:]
  return workdir


@pytest.fixture(scope="module")
def reproduced(evaluated, tmp_path_factory):
  """(exit code, printed report, workdir) of `reproduce` re-training the original."""
  import contextlib, io
  workdir = str(tmp_path_factory.mktemp("again") / "run")
  out = io.StringIO()
  with contextlib.redirect_stdout(out), pytest.MonkeyPatch.context() as patch:
    one_device_children(patch)  # as the original ran
    code = reproduce.reproduce(evaluated, workdir)
  return code, out.getvalue(), workdir


def test_reproduced_run_matches(reproduced):
  code, out, _ = reproduced
  assert code == 0
  assert "final_eval_loss" in out and "arithmetic/exact_match" in out
  assert "the numbers match" in out and "DIFFERENT" not in out


def test_different_numbers_are_reported(evaluated, reproduced, tmp_path, capsys):
  import shutil
  evaluated = shutil.copytree(evaluated, str(tmp_path / "copy"))
  path = os.path.join(evaluated, "summary.json")
  with open(path) as f:
    summary = json.load(f)
  summary["final_train_loss"] += 0.5  # as if the original had trained differently
  with open(path, "w") as f:
    json.dump(summary, f)
  assert reproduce.judge(evaluated, reproduced[2]) == exits.MISMATCH
  out = capsys.readouterr().out
  assert "NOT reproduced" in out
  assert [line for line in out.splitlines() if "DIFFERENT" in line][0].startswith(
      "final_train_loss")


def _copy_with(evaluated, tmp_path, *, fingerprint=None, shift=None):
  """A copy of the run whose records say it ran elsewhere and/or scored differently."""
  import shutil
  copy = str(tmp_path / "elsewhere")
  shutil.copytree(evaluated, copy)
  path = os.path.join(copy, "summary.json")
  with open(path) as f:
    summary = json.load(f)
  if fingerprint:
    summary["fingerprint"].update(fingerprint)
  with open(path, "w") as f:
    json.dump(summary, f)
  if shift is not None:
    path = os.path.join(copy, "eval.json")
    with open(path) as f:
      evaluation = json.load(f)
    s = evaluation["tasks"]["arithmetic"]["all"]["metrics"]["answer_logprob"]
    width = s["ci_high"] - s["ci_low"]
    assert width > 0
    for k in ("mean", "ci_low", "ci_high"):  # the truth ends up inside (< 0.5) or outside
      s[k] += shift * width                  # (> 1) the shifted interval
    with open(path, "w") as f:
      json.dump(evaluation, f)
  return copy


def test_other_hardware_is_judged_statistically(evaluated, reproduced, tmp_path, capsys):
  copy = _copy_with(evaluated, tmp_path, fingerprint={"cpu": "Some Other CPU"}, shift=0.3)
  assert reproduce.judge(copy, reproduced[2]) == exits.OK
  out = capsys.readouterr().out
  assert "different fingerprint (cpu: 'Some Other CPU' -> " in out
  assert "reproduced within statistical tolerance" in out


def test_other_hardware_outside_the_interval_is_not_reproduced(evaluated, reproduced, tmp_path,
                                                              capsys):
  copy = _copy_with(evaluated, tmp_path, fingerprint={"vector_isa": ["neon"]}, shift=2.0)
  assert reproduce.judge(copy, reproduced[2]) == exits.MISMATCH
  out = capsys.readouterr().out
  assert "different fingerprint (vector_isa: ['neon'] -> " in out
  assert [line for line in out.splitlines() if "DIFFERENT" in line][0].startswith(
      "arithmetic/answer_logprob")
  assert "NOT reproduced" in out


def test_same_hardware_allows_only_float_noise(evaluated, reproduced, tmp_path, capsys):
  copy = _copy_with(evaluated, tmp_path, shift=0.3)  # inside its interval, yet changed
  assert reproduce.judge(copy, reproduced[2]) == exits.MISMATCH
  assert "same fingerprint" in capsys.readouterr().out
