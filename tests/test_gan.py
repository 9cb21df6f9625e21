"""The GAN family: counts match the model, sharded training equals one device, resume is
bitwise exact for both networks and both optimizers, and a trained run samples and
evaluates with the metrics that see mode collapse."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from scaling import cli, runs
from scaling import config as config_lib
from scaling.families import family_for
from scaling.generate import gan as gan_sampling
from scaling.models import counting
from scaling.train import loop
from tests.helpers import ROOT, checkpoint_state, dot_flops, flat_arrays, losses

GAN_CONFIG = os.path.join(ROOT, "configs", "gan", "digits.py")
# One block per network: the (2, 2, 2) step with R1's double backward compiles in half the
# time of two, and every sharded path is still taken.
TINY_GAN = [
    "model.d_model=32", "model.n_layers=1", "model.n_heads=4", "model.n_kv_heads=2",
    "model.d_ff=64", "gan.latent_dim=8", "train.batch_size=16", "train.warmup_steps=2",
    "train.log_every=1", "eval.every_steps=0", "eval.batch_size=64", "eval.max_examples=128",
    "checkpoint.every_steps=0",
]


def tiny_gan(*overrides: str):
  cfg = config_lib.load(GAN_CONFIG)
  config_lib.apply_overrides(cfg, [*TINY_GAN, *overrides])
  return cfg


def _model_cfg(**kw):
  base = dict(d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=64)
  return tiny_gan(*(f"model.{k}={v!r}" if isinstance(v, str) else f"model.{k}={v}"
                    for k, v in {**base, **kw}.items()))


@pytest.mark.parametrize("mlp,n_kv_heads", [("gelu", 2), ("swiglu", 4)])
def test_parameter_counts_match_both_networks(mlp, n_kv_heads):
  cfg = _model_cfg(mlp=mlp, n_kv_heads=n_kv_heads)
  model = nnx.eval_shape(family_for(cfg).make_model)
  counts = counting.gan_params(cfg.model, 1, 10, cfg.gan.latent_dim)
  for player in ("generator", "discriminator"):
    flat = nnx.to_flat_state(nnx.state(getattr(model, player), nnx.Param))
    assert counts[player].total == sum(int(np.prod(v.shape)) for _, v in flat), player
    tables = sum(int(np.prod(v.shape)) for path, v in flat
                 if path[-1] in ("class_KD", "project_KD"))
    assert counts[player].embedding == tables, player
  assert counts["total"].total == counts["generator"].total + counts["discriminator"].total
  assert family_for(cfg).params() == counts["total"]


def test_presets_match_the_dit_ladder_in_parameters():
  dit = os.path.join(ROOT, "configs", "diffusion", "digits.py")
  for gan_size, dit_size in (("g0", "d0"), ("g1", "d1"), ("g2", "d2"), ("g3", "d3")):
    gan_params = family_for(config_lib.load(f"{GAN_CONFIG}:size={gan_size}")).params().total
    dit_params = family_for(config_lib.load(f"{dit}:size={dit_size}")).params().total
    assert abs(gan_params / dit_params - 1) < 0.08, (gan_size, gan_params, dit_params)


def _batch(cfg, B=4):
  rng = np.random.default_rng(0)
  return {"images": jnp.asarray(rng.uniform(-1, 1, (B, 8, 8, 1)), jnp.float32),
          "labels": jnp.asarray(rng.integers(0, 10, B), jnp.int32)}


@pytest.mark.parametrize("r1", [False, True])
def test_flops_count_the_forward_passes_of_both_steps(r1):
  """The formula is GAN_FORWARDS forwards of each network's matmuls; the update's own
  matmuls (both steps, R1 included) come within 3% of it (backward passes are not exactly
  twice the forward: the first layers' input gradients are not needed, the heads'
  are outer products)."""
  cfg = _model_cfg(mlp="swiglu")
  config_lib.apply_overrides(cfg, [f"gan.r1_gamma={1.0 if r1 else 0.0}"])
  family = family_for(cfg)
  model = nnx.eval_shape(family.make_model)
  batch, B = _batch(cfg), 4
  z = jnp.zeros((B, cfg.gan.latent_dim))
  f_g = dot_flops(jax.make_jaxpr(lambda m: m.generator(z, batch["labels"]))(model).jaxpr)
  f_d = dot_flops(jax.make_jaxpr(
      lambda m: m.discriminator(batch["images"], batch["labels"]))(model).jaxpr)
  forwards = dict(counting.GAN_FORWARDS)
  forwards["discriminator"] += counting.R1_DISCRIMINATOR_FORWARDS if r1 else 0
  expected = (forwards["generator"] * f_g + forwards["discriminator"] * f_d) / B
  assert family.flops_per_unit() == pytest.approx(expected, rel=1e-12)

  graphdef, params = nnx.split(model, nnx.Param)
  tx = family.optimizer()
  update = lambda p, s: family.update(lambda q: nnx.merge(graphdef, q), tx, p, s, batch,
                                      jax.random.key(0))
  opt_state = jax.eval_shape(tx.init, params)
  actual = dot_flops(jax.make_jaxpr(update)(params, opt_state).jaxpr) / B
  assert abs(actual / expected - 1) < 0.03, (actual, expected)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """Four steps on one device, checkpointed at 2 and 4."""
  cfg = tiny_gan("train.steps=4", "checkpoint.every_steps=2", "checkpoint.max_to_keep=5",
                 "checkpoint.async_save=False", "mesh.data=1")
  workdir = str(tmp_path_factory.mktemp("gan_reference"))
  assert loop.train(cfg, workdir, devices=jax.devices()[:1]) == 0
  return cfg, workdir


def test_resume_is_exact_for_both_networks_and_optimizers(reference, tmp_path):
  cfg, full = reference
  resumed = str(tmp_path / "resumed")
  shutil.copytree(full, resumed)
  shutil.rmtree(os.path.join(resumed, "checkpoints", "4"))
  os.remove(os.path.join(resumed, "summary.json"))
  assert loop.train(cfg, resumed, devices=jax.devices()[:1]) == 0
  assert losses(resumed) == losses(full)
  a, b = checkpoint_state(full), checkpoint_state(resumed)
  assert set(a["opt_state"]) == {"generator", "discriminator"}
  for field in ("params", "ema", "opt_state"):
    flat_a, flat_b = flat_arrays(a[field]), flat_arrays(b[field])
    assert flat_a.keys() == flat_b.keys() and len(flat_a) > 20
    for path in flat_a:
      np.testing.assert_array_equal(flat_a[path], flat_b[path], err_msg=f"{field}{path}")
  # Each optimizer moved its own network: Adam's second moments are non-zero in both.
  for player in ("generator", "discriminator"):
    assert any(np.abs(v).max() > 0 for k, v in flat_arrays(a["opt_state"][player]).items()
               if "nu" in k)


def test_sharded_training_equals_one_device(reference, tmp_path):
  cfg, one = reference
  sharded_cfg = ml_collections.ConfigDict(cfg.to_dict())
  config_lib.apply_overrides(sharded_cfg, ["mesh.data=2", "mesh.fsdp=2", "mesh.tensor=2"])
  sharded = str(tmp_path / "sharded")
  assert loop.train(sharded_cfg, sharded) == 0
  reference_losses, sharded_losses = losses(one), losses(sharded)
  assert sorted(reference_losses) == [1, 2, 3, 4]
  np.testing.assert_allclose([sharded_losses[s] for s in range(1, 5)],
                             [reference_losses[s] for s in range(1, 5)], rtol=0, atol=1e-5)
  with open(os.path.join(one, "metrics.jsonl")) as f:
    g_losses = [r["g_loss"] for r in map(json.loads, f)]
  assert len(set(np.round(g_losses, 4))) > 1  # the generator trained too
  a, b = checkpoint_state(one), checkpoint_state(sharded)
  for field in ("params", "ema"):
    flat_a, flat_b = flat_arrays(a[field]), flat_arrays(b[field])
    for path in flat_a:
      np.testing.assert_allclose(flat_b[path], flat_a[path], rtol=0, atol=1e-5,
                                 err_msg=f"{field}{path}")


def test_a_trained_gan_samples_and_evaluates(reference, capsys):
  _, workdir = reference
  one = gan_sampling.generate(runs.load(workdir, devices=jax.devices()[:1]),
                              np.arange(16) % 10, seed=3)
  eight = gan_sampling.generate(runs.load(workdir), np.arange(16) % 10, seed=3)
  assert one.shape == (16, 8, 8, 1) and np.all(np.abs(one) <= 1)
  np.testing.assert_allclose(eight, one, rtol=0, atol=1e-5)
  assert cli.main(["sample", f"--workdir={workdir}", "--class", "3", "-n", "4"]) == 0
  assert os.path.exists(os.path.join(workdir, "samples", "class3-gan-seed0.png"))
  assert cli.main(["eval", f"--workdir={workdir}", "-n", "4"]) == 0
  with open(os.path.join(workdir, "eval.json")) as f:
    tasks = json.load(f)["tasks"]
  subset = tasks["image_quality"]["generator"]
  assert subset["n"] == 40
  assert set(subset["metrics"]) == {"class_accuracy", "fd", "kid", "precision", "recall",
                                    "density", "coverage", "class_coverage",
                                    "class_balance"}
  # Four steps of training: far from the held-out digits' own recall.
  real = tasks["real_data"]["test_vs_train"]["metrics"]
  assert subset["metrics"]["recall"]["mean"] < real["recall"]["mean"]
  capsys.readouterr()
  for args in (["sample", "--steps", "5"], ["eval", "--guidance", "2"]):
    assert cli.main([args[0], f"--workdir={workdir}", *args[1:]]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "one pass" in err and "\n" not in err


@pytest.mark.parametrize("override, field", [
    ("gan.r1_gamma=-1.0", "gan.r1_gamma"),
    ("gan.latent_dim=0", "gan.latent_dim"),
    ("model.parametrization='mup'", "model.parametrization"),
    ("gan.ema_decay=1.0", "gan.ema_decay"),
])
def test_bad_gan_config_is_one_line(tmp_path, capsys, override, field):
  workdir = str(tmp_path / "run")
  code = cli.main(["train", f"--config={GAN_CONFIG}", f"--workdir={workdir}",
                   *[f"--config.{o}" for o in (*TINY_GAN, override)]])
  assert code == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-1].startswith("error: ") and field in err[-1], err
  assert not os.path.exists(workdir)
