"""Config errors exit 1 with one line and touch nothing; a non-finite loss ends as diverged."""

import os

import pytest

from scaling import exits
from scaling import cli
from scaling.train import loop
from tests.helpers import cli_args, run_cli, summary, tiny_config


def _snapshot(directory):
  out = {}
  for root, _, files in os.walk(directory):
    for name in files:
      path = os.path.join(root, name)
      stat = os.stat(path)
      out[os.path.relpath(path, directory)] = (stat.st_size, stat.st_mtime_ns)
  return out


@pytest.fixture(scope="module")
def existing_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("existing"))
  cfg = tiny_config("train.steps=2", "checkpoint.every_steps=0")
  assert loop.train(cfg, workdir) == exits.OK
  return workdir


@pytest.mark.parametrize("overrides, field", [
    (["nonsense.key=1"], "unknown config field: nonsense"),
    (["model.d_modl=64"], "unknown config field: model.d_modl"),
    (["model.d_model=30"], "config.model.d_model: d_model=30 is not divisible by n_heads=4"),
    (["mesh.data=3"], "config.mesh"),
    (["mesh.data=2", "mesh.fsdp=2", "mesh.tensor=1"], "config.mesh"),
    (["train.batch_size=12"], "config.train.batch_size: 12 is not divisible by the data-parallel"),
    (["model.n_kv_heads=3"], "config.model.n_kv_heads"),
    (["data.seq_len=8"], "config.data.seq_len"),
    (["model.mlp='relu'"], "config.model.mlp"),
    (["train.steps=ten"], "--config.train.steps: cannot parse 'ten' as a int"),
    (["mesh.tensor=8"], "not divisible by mesh axes"),
])
def test_config_error_is_one_line_exit_1(existing_run, capsys, overrides, field):
  before = _snapshot(existing_run)
  args = ["train", *cli_args(*overrides), f"--workdir={existing_run}"]
  assert cli.main(args) == 1
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1, err
  assert err.startswith("error: ") and field in err, err
  assert _snapshot(existing_run) == before


def test_config_error_from_the_command_line(existing_run):
  before = _snapshot(existing_run)
  result = run_cli("train", *cli_args("model.d_model=30"), f"--workdir={existing_run}")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [
      "error: config.model.d_model: d_model=30 is not divisible by n_heads=4"]
  assert _snapshot(existing_run) == before


def test_different_config_refuses_existing_run(existing_run, capsys):
  before = _snapshot(existing_run)
  assert cli.main(["train", *cli_args("train.steps=5"), f"--workdir={existing_run}"]) == 1
  assert "holds a run with a different config" in capsys.readouterr().err
  assert _snapshot(existing_run) == before


def test_missing_config_file(capsys):
  assert cli.main(["train", "--config=configs/lm/nope.py", "--workdir=/tmp/x"]) == 1
  assert capsys.readouterr().err.strip() == "error: config file not found: configs/lm/nope.py"


def test_non_finite_loss_is_diverged(tmp_path):
  cfg = tiny_config("train.steps=30", "train.learning_rate=1e30", "train.warmup_steps=0",
                    "checkpoint.every_steps=0")
  assert loop.train(cfg, str(tmp_path)) == exits.DIVERGED
  record = summary(str(tmp_path))
  assert record["status"] == "diverged"
  assert record["step"] < 30
  assert record["final_train_loss"] == "nan"
