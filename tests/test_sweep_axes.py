"""Sweep axes: learning-rate grids, IsoFLOP budgets, cooldown branches from one stable phase
(each branch equal to a run trained straight through), checkpoint evals; every new field
is checked before anything trains."""

import json
import os

import jax
import numpy as np
import pytest

from scaling import cli, exits
from scaling.sweep import axes, spec
from scaling.sweep.layout import SweepDir
from scaling.train import loop
from tests.helpers import LM_CONFIG, TINY, losses, one_device_children


def _write(path, extra="", overrides=()):
  path.write_text(f'''
import ml_collections

def get_config(arg=None):
  s = ml_collections.ConfigDict()
  s.name = "axes"
  s.base = "{LM_CONFIG}"
  s.sizes = ("s0", "s1", "s2")
  s.seeds = (0,)
  s.overrides = {tuple(o for o in TINY if not o.startswith("model."))
                 + ("train.steps=40", "train.warmup_steps=4") + tuple(overrides)!r}
  s.eval = ml_collections.ConfigDict({{"suites": "arithmetic", "n": 10}})
{extra}
  return s
''')
  return str(path)


def test_learning_rate_grid_crosses_sizes_and_seeds(tmp_path):
  sweep = spec.load(_write(tmp_path / "s.py", "  s.learning_rates = (1e-3, 4e-3)\n"
                           "  s.seeds = (0, 1)"))
  trials = spec.trials(sweep)
  assert len(trials) == 3 * 2 * 2 and len({t.name for t in trials}) == 12
  assert {(t.size, t.seed, t.learning_rate) for t in trials} == {
      (s, seed, lr) for s in ("s0", "s1", "s2") for seed in (0, 1) for lr in (1e-3, 4e-3)}
  assert all(t.cfg.train.learning_rate == t.learning_rate for t in trials)


def test_flop_budgets_set_steps_from_each_sizes_cost(tmp_path):
  sweep = spec.load(_write(tmp_path / "s.py", "  s.flop_budgets = (3e10, 1e11)\n"
                           "  s.isoflop_min_steps = 5"))
  trials = spec.trials(sweep)
  for t in trials:
    from scaling.families import family_for
    f = family_for(t.cfg)
    spent = f.flops_per_unit() * f.units_per_step() * t.cfg.train.steps
    assert abs(spent / t.flop_budget - 1) < 0.05, (t.size, spent, t.flop_budget)
  small = {t.size: t.cfg.train.steps for t in trials if t.flop_budget == 3e10}
  assert small["s0"] > small["s1"] > small["s2"]  # smaller models train on more tokens


@pytest.mark.parametrize("extra, message", [
    ("  s.learning_rates = (1e-3, -1.0)", "sweep.learning_rates: must be positive"),
    ("  s.flop_budgets = (1e3,)", "trains only 0 size(s)"),
    ("  s.cooldowns = (0.5,)", "need train.schedule='wsd'"),
    ("  s.cooldowns = (0.5, 1.5)\n  s.overrides = s.overrides + (\"train.schedule='wsd'\",)",
     "fractions of the run in (0, 1]"),
    ("  s.flop_budgets = (1e12,)\n  s.tokens_per_param = 20.0", "leave tokens_per_param"),
    ("  s.eval.checkpoint_every = -2", "sweep.eval.checkpoints"),
    ("  s.cooldown = (0.5,)", "unknown sweep field: cooldown"),
])
def test_bad_axes_fail_before_training(tmp_path, capsys, extra, message):
  path = _write(tmp_path / "s.py", extra)
  out = tmp_path / "out"
  assert cli.main(["sweep", "run", f"--config={path}", f"--dir={out}"]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err
  assert not out.exists()


def test_branch_step_is_where_the_decay_starts():
  from scaling import config as config_lib
  from scaling import optim
  cfg = config_lib.load(LM_CONFIG)
  config_lib.apply_overrides(cfg, ["train.schedule='wsd'", "train.steps=40",
                                   "train.warmup_steps=4", "train.decay_fraction=0.5"])
  step, lr = axes.branch_step(cfg.train), optim.schedule(cfg.train)
  assert step == 22 and float(lr(step)) == pytest.approx(cfg.train.learning_rate)
  assert float(lr(step + 1)) < 0.99 * cfg.train.learning_rate


@pytest.fixture(scope="module")
def cooldown_sweep(tmp_path_factory):
  base = tmp_path_factory.mktemp("cooldowns")
  path = _write(base / "s.py", "  s.sizes = ('s0',)\n  s.cooldowns = (0.5, 1.0)\n"
                "  s.eval.checkpoints = (30,)",
                ("train.schedule='wsd'", "train.decay_fraction=0.5",
                 "checkpoint.every_steps=0", "train.log_every=2"))
  with pytest.MonkeyPatch.context() as patch:  # trials on one device: their test is the axes
    one_device_children(patch)
    assert cli.main(["sweep", "run", f"--config={path}", f"--dir={base / 'out'}"]) == 0
  return SweepDir(str(base / "out"))


def test_cooldown_branches_equal_runs_trained_straight_through(cooldown_sweep, tmp_path):
  _, trials = spec.load_saved(cooldown_sweep)
  trunk = next(t for t in trials if t.role == "trunk")
  branches = [t for t in trials if t.trunk]
  assert [(t.cooldown, t.cfg.train.steps, t.branch_step) for t in branches] == [
      (0.5, 20, 12), (1.0, 40, 22)]
  for t in branches:
    straight = str(tmp_path / t.name)
    assert loop.train(t.cfg, straight, devices=jax.devices()[:1]) == exits.OK
    got, want = losses(cooldown_sweep.run(t.name).path), losses(straight)
    assert sorted(got) == sorted(want)
    np.testing.assert_allclose([got[s] for s in sorted(got)], [want[s] for s in sorted(want)],
                               rtol=0, atol=1e-6)
  # The stable phase trained once: 22 trunk steps, then 8 and 18 steps of decay.
  with open(cooldown_sweep.run(trunk.name).summary) as f:
    assert json.load(f)["step"] == 22
  assert axes.trunk_steps_saved(trials) == {
      "steps_trained": 48, "steps_from_scratch": 60, "saved_fraction": pytest.approx(0.2)}


def test_checkpoint_evals_give_rows_per_step(cooldown_sweep):
  with open(cooldown_sweep.results) as f:
    rows = [json.loads(line) for line in f]
  assert {(r["cooldown"], r["step"], r["final"]) for r in rows} == {
      (0.5, 20, True), (1.0, 40, True), (1.0, 30, False)}
  intermediate = next(r for r in rows if not r["final"])
  assert intermediate["tokens"] == 30 * 16 * 16 and intermediate["final_eval_loss"] > 0
  assert "arithmetic/+3d/exact_match" in intermediate["metrics"]
  assert os.path.exists(os.path.join(cooldown_sweep.runs, intermediate["trial"], "evals",
                                     "step-30.json"))


def test_last_of_several_checkpoint_evals_equals_a_final_only_eval(tmp_path, capsys):
  import shutil
  from tests.helpers import tiny_config
  run = str(tmp_path / "run")
  cfg = tiny_config("train.steps=30", "checkpoint.every_steps=10", "checkpoint.max_to_keep=5")
  # One device: the test is of the trained model, not of its layout.
  assert loop.train(cfg, run, devices=jax.devices()[:1]) == exits.OK
  alone = shutil.copytree(run, str(tmp_path / "alone"))
  args = ["--suite=arithmetic", "-n", "8"]
  assert cli.main(["eval", f"--workdir={run}", "--step", "10", "--step", "20",
                   "--step", "final", *args]) == 0
  assert cli.main(["eval", f"--workdir={alone}", *args]) == 0
  capsys.readouterr()
  read = lambda path: json.load(open(path))["tasks"]
  assert read(os.path.join(run, "eval.json")) == read(os.path.join(alone, "eval.json"))
  assert read(os.path.join(run, "evals", "step-10.json")) != read(os.path.join(run, "eval.json"))
