"""The diffusion transformer: adaLN-Zero start, conditioning, counts, sharding, scan."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from scaling import mesh as mesh_lib
from scaling.errors import ConfigError
from scaling.models import counting
from scaling.families import diffusion
from scaling.models.dit import DiT
from scaling.families.base import eager_sharding
from tests.helpers import dot_flops, tiny_config

IMAGE, CHANNELS, CLASSES, B = 8, 3, 10, 8


def dit_config(**overrides):
  """The DiT family's model section with a small shape (and any overrides)."""
  cfg = diffusion.base_config().model
  cfg.update({**dict(d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=64), **overrides})
  return cfg


def make(cfg, seed=0, mesh=None):
  """A DiT whose every parameter is random (none zero, as after training, so every path
  carries signal), placed in its shards on `mesh`. Host-drawn values: the same on any mesh."""
  graphdef, shapes = nnx.split(abstract(cfg), nnx.Param)
  shardings = (nnx.get_named_sharding(shapes, mesh) if mesh is not None
               else jax.tree.map(lambda _: jax.devices()[0], shapes))
  rng = np.random.default_rng(seed)
  params = jax.tree.map(
      lambda a, s: jax.device_put(0.2 * rng.standard_normal(a.shape, np.float32), s),
      shapes, shardings)
  return nnx.merge(graphdef, params)


def init(cfg, seed=0):
  """A DiT as initialised, on one device. (The RBG generator compiles faster than the
  default threefry; the initial distributions are the same.)"""
  with eager_sharding():
    return DiT(cfg, IMAGE, CHANNELS, CLASSES,
               rngs=nnx.Rngs(params=jax.random.key(seed, impl="rbg")))


def abstract(cfg):
  """The model with shapes but no values."""
  with eager_sharding():
    return nnx.eval_shape(lambda: DiT(cfg, IMAGE, CHANNELS, CLASSES, rngs=nnx.Rngs(params=0)))


FORWARD = jax.jit(lambda model, x, t, y: model(x, t, y))


def inputs(seed=0):
  rng = np.random.default_rng(seed)
  return (jnp.asarray(rng.uniform(-1, 1, (B, IMAGE, IMAGE, CHANNELS)), jnp.float32),
          jnp.asarray(rng.integers(0, 1000, B), jnp.int32),
          jnp.asarray(rng.integers(0, CLASSES + 1, B), jnp.int32))


def test_starts_at_zero_then_depends_on_time_and_label():
  x, t, y = inputs()
  out = FORWARD(init(dit_config()), x, t, y)
  assert out.shape == x.shape and out.dtype == jnp.float32
  assert np.all(np.asarray(out) == 0.0)  # adaLN-Zero gates and a zero output layer
  model = make(dit_config())
  fwd = lambda x, t, y: FORWARD(model, x, t, y)
  base = np.asarray(fwd(x, t, y))
  assert np.abs(base).mean() > 1e-2
  assert np.all(np.abs(np.asarray(fwd(x, (t + 100) % 1000, y)) - base).mean(axis=(1, 2, 3)) > 1e-3)
  assert np.all(np.abs(np.asarray(fwd(x, t, (y + 1) % (CLASSES + 1))) - base)
                .mean(axis=(1, 2, 3)) > 1e-3)


def test_attention_is_not_causal():
  """Changing the last patch changes the output at the first: every patch sees every other."""
  model = make(dit_config())
  x, t, y = inputs()
  changed = x.at[:, -2:, -2:, :].add(1.0)
  fwd = lambda x: FORWARD(model, x, t, y)
  first_patch = lambda out: np.asarray(out)[:, :2, :2, :]
  assert np.all(np.abs(first_patch(fwd(changed)) - first_patch(fwd(x))).max(axis=(1, 2, 3))
                > 1e-4)


@pytest.mark.parametrize("mlp,n_kv_heads", [("gelu", 2), ("swiglu", 4)])
def test_parameter_count_matches_model(mlp, n_kv_heads):
  cfg = dit_config(mlp=mlp, n_kv_heads=n_kv_heads)
  model = abstract(cfg)
  params = nnx.to_flat_state(nnx.state(model, nnx.Param))
  counts = counting.dit_params(cfg, IMAGE, CHANNELS, CLASSES)
  assert counts.total == sum(int(np.prod(v.shape)) for _, v in params)
  class_rows = dict(params)[("class_ND",)].shape
  assert counts.embedding == class_rows[0] * class_rows[1] == (CLASSES + 1) * cfg.d_model
  assert counts.non_embedding == counts.total - counts.embedding


def test_flops_per_sample_are_three_forward_passes_of_matmuls():
  cfg = dit_config(mlp="swiglu")
  forward = dot_flops(jax.make_jaxpr(FORWARD)(abstract(cfg), *inputs()).jaxpr)
  assert forward > 0
  assert counting.dit_flops_per_sample(cfg, IMAGE, CHANNELS) == 3 * forward / B


# Unoptimised machine code halves the compile time of these four small programs; the
# reference and the sharded runs are compiled alike.
@functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
def _value_and_grad(model, x, t, y, target):
  graphdef, params = nnx.split(model, nnx.Param)

  def loss(params):
    return jnp.mean(jnp.square(nnx.merge(graphdef, params)(x, t, y) - target))
  return jax.value_and_grad(loss)(params)


def _loss_and_grads(model, mesh=None, rules=None):
  """A squared-error loss at fixed inputs and its gradient; with a mesh, the batch is
  split over it as the train loop splits it."""
  x, t, y = inputs(1)
  target = jnp.asarray(np.random.default_rng(2).normal(size=x.shape), jnp.float32)
  if mesh is not None:
    put = lambda a: jax.device_put(a, mesh_lib.batch_sharding(mesh, rules, a.ndim))
    x, t, y, target = put(x), put(t), put(y), put(target)
  return _value_and_grad(model, x, t, y, target)


# Scanned layers keep the compiled program small; the sharded runs scan too.
SHARDED = dict(scan_layers=True)


@pytest.fixture(scope="module")
def reference():
  return _loss_and_grads(make(dit_config(**SHARDED)))


def test_scan_matches_unrolled():
  x, t, y = inputs()
  np.testing.assert_allclose(FORWARD(make(dit_config(scan_layers=True)), x, t, y),
                             FORWARD(make(dit_config()), x, t, y), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(8, 1, 1), (2, 4, 1), (2, 2, 2)])
def test_sharded_loss_and_grads_equal_single_device(reference, shape):
  reference_loss, reference_grads = reference
  data, fsdp, tensor = shape
  mesh = mesh_lib.make_mesh(ml_collections.ConfigDict(dict(data=data, fsdp=fsdp,
                                                            tensor=tensor)))
  # The LM's default rules; `patch` and `cond` are left out, so they stay replicated.
  rules = mesh_lib.complete_rules(tiny_config().mesh.rules)
  with mesh_lib.activate(mesh, rules):
    model = make(dit_config(**SHARDED), mesh=mesh)
    q = model.blocks.attn.q_DHK[...]
    assert q.sharding.spec == jax.sharding.PartitionSpec(None, "fsdp", "tensor", None)
    assert q.addressable_shards[0].data.size * fsdp * tensor == q.size
    table = model.class_ND[...]
    assert table.sharding.spec == jax.sharding.PartitionSpec(None, "fsdp")
    loss, grads = _loss_and_grads(model, mesh, rules)
  np.testing.assert_allclose(loss, reference_loss, rtol=0, atol=1e-5)
  assert len(jax.tree.leaves(grads)) == len(jax.tree.leaves(reference_grads)) == 19
  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(reference_grads)):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_bad_shapes_raise_config_errors():
  with pytest.raises(ConfigError, match="model.patch_size.*not divisible"):
    DiT(dit_config(patch_size=3), IMAGE, CHANNELS, CLASSES, rngs=nnx.Rngs(params=0))
  with pytest.raises(ConfigError, match="model.d_model"):
    DiT(dit_config(d_model=30, n_heads=3, n_kv_heads=3), IMAGE, CHANNELS, CLASSES,
        rngs=nnx.Rngs(params=0))
