"""The train step: accumulated gradients, layer-group norms, the donated state, and the
loop around it (evaluation cadence, profiler traces)."""

import glob
import gzip
import json
import os

import jax
import numpy as np
import pytest

from scaling import exits
from scaling import mesh as mesh_lib
from scaling.errors import ConfigError
from scaling.families import base, family_for, validate
from scaling.train import loop
from scaling.train.norms import LayerGroups
from scaling.train.state import StateSpec
from tests.helpers import losses, summary, tiny_config


def _setup(cfg, devices):
  mesh = validate(cfg, devices)
  rules = mesh_lib.complete_rules(cfg.mesh.rules)
  family = family_for(cfg)
  tx = family.optimizer()
  with mesh_lib.activate(mesh, rules):
    spec = StateSpec(family.make_model, tx, mesh)
  sharding = mesh_lib.batch_sharding(mesh, rules, ndim=1)
  return mesh, rules, family, tx, spec, sharding


def _batch(family, sharding):
  """A synthetic batch whose rows hold different numbers of loss tokens, so a mean over
  microbatches that ignored the weights would differ from the whole batch's."""
  rng = np.random.default_rng(1)
  batch = family.synthetic_batch(rng)
  mask = batch["loss_mask"]
  mask[:, : mask.shape[1] // 2] *= rng.integers(0, 2, (mask.shape[0], 1))
  return jax.device_put(batch, sharding)


@pytest.mark.parametrize("mesh_axes", [(1, 1, 1), (2, 2, 2)])
def test_accumulated_gradients_equal_the_whole_batch(mesh_axes):
  data, fsdp, tensor = mesh_axes
  cfg = tiny_config(f"mesh.data={data}", f"mesh.fsdp={fsdp}", f"mesh.tensor={tensor}")
  mesh, rules, family, _, spec, sharding = _setup(cfg, jax.devices()[:data * fsdp * tensor])
  with mesh_lib.activate(mesh, rules):
    state = spec.init(0)
    batch = _batch(family, sharding)
    terms = lambda p, b, k: family.loss_terms(spec.model(p), b, k)
    key = jax.random.key(0)
    grads = {k: jax.jit(lambda p, b: base.accumulated_gradients(terms, p, b, key, k))(
        state.params, batch) for k in (1, 2, 4)}
  whole_loss, whole = grads[1]
  for k in (2, 4):
    loss, accumulated = grads[k]
    np.testing.assert_allclose(float(loss), float(whole_loss), rtol=1e-6)  # ~6 nats
    for a, b in zip(jax.tree.leaves(accumulated), jax.tree.leaves(whole)):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-6)


def test_the_same_global_batch_trains_alike_on_one_and_eight_devices(tmp_path):
  runs = {"whole, 1 device": ("train.microbatches=1", 1),
          "4 microbatches, 1 device": ("train.microbatches=4", 1),
          "2 microbatches, 8 devices": ("train.microbatches=2", 8)}
  got = {}
  for name, (override, n) in runs.items():
    cfg = tiny_config("train.steps=3", "checkpoint.every_steps=0", override,
                      f"mesh.data={n}")
    workdir = str(tmp_path / name.replace(" ", "_").replace(",", ""))
    assert loop.train(cfg, workdir, devices=jax.devices()[:n]) == exits.OK
    got[name] = [losses(workdir)[s] for s in (1, 2, 3)]
  for name, values in got.items():
    np.testing.assert_allclose(values, got["whole, 1 device"], rtol=0, atol=1e-5,
                               err_msg=name)


@pytest.mark.parametrize("override, field", [
    ("train.microbatches=3", "train.microbatches"),   # does not divide 16
    ("train.microbatches=0", "train.microbatches"),
    ("eval.every_steps=-1", "eval.every_steps"),
])
def test_impossible_step_settings_name_their_field(override, field):
  with pytest.raises(ConfigError, match=field):
    validate(tiny_config(override), jax.devices()[:1])


def test_microbatches_too_small_for_the_mesh_are_refused():
  with pytest.raises(ConfigError, match="train.microbatches"):
    validate(tiny_config("train.microbatches=4", "mesh.data=8"), jax.devices())


def test_norms_per_layer_group_and_the_donated_state():
  cfg = tiny_config()
  mesh, rules, family, tx, spec, sharding = _setup(cfg, jax.devices()[:1])
  with mesh_lib.activate(mesh, rules):
    step = loop.make_train_step(spec, family, tx, sharding)
    # The first step's rate is 0 (warm-up), so compare the second one.
    old, skipped = step(spec.init(0), _batch(family, sharding), jax.random.key(0), False)
    before = jax.tree.map(lambda x: np.array(x, copy=True), old.params)  # no view kept
    state, metrics = step(old, _batch(family, sharding), jax.random.key(0), True)
  assert all(leaf.is_deleted() for leaf in jax.tree.leaves(old.params))  # donated
  after = jax.device_get(state.params)
  groups = LayerGroups.of(spec.abstract.params)
  assert "blocks.1.attn" in groups.names and "final_norm" in groups.names
  expected = {name: [0.0, 0.0] for name in groups.names}
  for p0, p1, group in zip(jax.tree.leaves(before), jax.tree.leaves(after), groups.of_leaf):
    p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
    per_layer = group if isinstance(group, tuple) else None
    for i, g in enumerate(per_layer or (group,)):
      a, b = (p0[i], p1[i]) if per_layer else (p0, p1)
      expected[groups.names[g]][0] += np.sum(b ** 2)
      expected[groups.names[g]][1] += np.sum((b - a) ** 2)
  for name, (param_sq, update_sq) in expected.items():
    np.testing.assert_allclose(float(metrics[f"param_norm/{name}"]), np.sqrt(param_sq),
                               rtol=1e-5)
    np.testing.assert_allclose(float(metrics[f"update_norm/{name}"]), np.sqrt(update_sq),
                               rtol=1e-4)
  assert all(float(metrics[f"update_norm/{n}"]) > 0 for n in groups.names)
  assert all(float(skipped[f"param_norm/{n}"]) == 0 for n in groups.names)  # not recorded


def test_eval_cadence_is_its_own_and_a_profile_names_the_train_step(tmp_path):
  """Evaluation every 3 steps while logging every 2 evaluates at 3 and 6 (not only where
  both are due), and `profile_steps` leaves a trace TensorBoard and Perfetto open."""
  cfg = tiny_config("train.steps=6", "train.log_every=2", "eval.every_steps=3",
                    "checkpoint.every_steps=0", "mesh.data=1")
  workdir = str(tmp_path)
  assert loop.train(cfg, workdir, devices=jax.devices()[:1], profile_steps=(2, 4)) == exits.OK
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = {r["step"]: r for r in map(json.loads, f)}
  assert sorted(s for s, r in records.items() if "eval_loss" in r) == [3, 6]
  assert sorted(records) == [2, 3, 4, 6]
  assert any(k.startswith("param_norm/blocks.0") for k in records[2])
  # The run's devices, not the process's eight, decide its rounding.
  assert summary(workdir)["fingerprint"]["device_count"] == 1
  run = glob.glob(os.path.join(workdir, "profile", "plugins", "profile", "*"))
  assert len(run) == 1
  assert glob.glob(os.path.join(run[0], "*.xplane.pb"))
  with gzip.open(os.path.join(run[0], "perfetto_trace.json.gz"), "rt") as f:
    events = json.load(f)
  events = events["traceEvents"] if isinstance(events, dict) else events
  names = {str(e.get("name")) for e in events}
  assert "PjitFunction(train_step)" in names and "train" in names
