"""Sharding is real and exact: every mesh gives the same losses, parameters follow the rules."""

import jax
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from scaling import exits
from scaling import mesh as mesh_lib
from scaling import optim
from scaling.errors import ConfigError
from scaling.train import loop
from scaling.families.lm import LMFamily
from scaling.train.state import StateSpec
from tests.helpers import losses, tiny_config

MESHES = [(1, 1, 1), (8, 1, 1), (2, 4, 1), (2, 2, 2)]


@pytest.fixture(scope="module")
def mesh_losses(tmp_path_factory):
  out = {}
  for shape in MESHES:
    data, fsdp, tensor = shape
    cfg = tiny_config("train.steps=3", f"mesh.data={data}", f"mesh.fsdp={fsdp}",
                      f"mesh.tensor={tensor}", "checkpoint.every_steps=0")
    devices = jax.devices()[:data * fsdp * tensor]
    workdir = str(tmp_path_factory.mktemp("mesh"))
    assert loop.train(cfg, workdir, devices=devices) == exits.OK
    out[shape] = losses(workdir)
  return out


@pytest.mark.parametrize("shape", MESHES[1:])
def test_sharded_losses_equal_single_device(mesh_losses, shape):
  reference = mesh_losses[(1, 1, 1)]
  assert sorted(reference) == [1, 2, 3]
  np.testing.assert_allclose([mesh_losses[shape][s] for s in (1, 2, 3)],
                             [reference[s] for s in (1, 2, 3)], rtol=0, atol=1e-5)
  # Training moved: the three losses are not all the same number.
  assert len({round(v, 4) for v in reference.values()}) > 1


def test_head_major_attention_on_a_mesh_equals_one_device(tmp_path):
  """Head dim 64 takes attention's head-major layout (grouped heads here); split over
  data, fsdp and tensor it trains to the single device's losses too."""
  from scaling.models.backend import HEAD_MAJOR_MIN_HEAD_DIM
  d_model = 4 * HEAD_MAJOR_MIN_HEAD_DIM  # 4 heads of 64, 2 key/value heads
  got = {}
  for shape in ((1, 1, 1), (2, 2, 2)):
    data, fsdp, tensor = shape
    cfg = tiny_config(f"model.d_model={d_model}", "train.steps=3", f"mesh.data={data}",
                      f"mesh.fsdp={fsdp}", f"mesh.tensor={tensor}", "checkpoint.every_steps=0")
    workdir = str(tmp_path / "x".join(map(str, shape)))
    assert loop.train(cfg, workdir, devices=jax.devices()[:data * fsdp * tensor]) == exits.OK
    got[shape] = losses(workdir)
  np.testing.assert_allclose([got[(2, 2, 2)][s] for s in (1, 2, 3)],
                             [got[(1, 1, 1)][s] for s in (1, 2, 3)], rtol=0, atol=1e-5)
  assert len({round(v, 4) for v in got[(1, 1, 1)].values()}) > 1


def test_parameter_shardings_follow_rules():
  cfg = tiny_config("mesh.data=2", "mesh.fsdp=2", "mesh.tensor=2")
  mesh = mesh_lib.make_mesh(cfg.mesh)
  rules = mesh_lib.complete_rules(cfg.mesh.rules)
  with mesh_lib.activate(mesh, rules):
    factory = StateSpec(LMFamily(cfg).make_model, optim.optimizer(cfg.train), mesh)
    state = factory.init(cfg.seed)
  params = state.params
  expected = {
      ("embed_VD",): P("tensor", "fsdp"),
      ("final_norm", "scale"): P("fsdp"),
      ("blocks", "attn", "q_DHK"): P(None, "fsdp", "tensor", None),
      ("blocks", "attn", "k_DHK"): P(None, "fsdp", "tensor", None),
      ("blocks", "attn", "o_HKD"): P(None, "tensor", None, "fsdp"),
      ("blocks", "mlp", "wi_DF"): P(None, "fsdp", "tensor"),
      ("blocks", "mlp", "wo_FD"): P(None, "tensor", "fsdp"),
      ("blocks", "attn_norm", "scale"): P(None, "fsdp"),
  }
  flat = dict(nnx.to_flat_state(params))
  for path, spec in expected.items():
    array = flat[path][...]
    assert array.sharding.spec == spec, path
    # Really split: each device holds 1/(product of its mesh axes) of the array.
    ways = np.prod([mesh.shape[a] for a in jax.tree.leaves(tuple(spec)) if a])
    assert array.addressable_shards[0].data.size * ways == array.size, path
  # The optimizer moments mirror the parameters' shardings.
  mu = state.opt_state[1][0].mu
  assert dict(nnx.to_flat_state(mu))[("embed_VD",)][...].sharding.spec == P("tensor", "fsdp")


def test_changing_rules_changes_sharding_not_model():
  cfg = tiny_config("mesh.data=1", "mesh.fsdp=8", "mesh.tensor=1")
  rules = mesh_lib.complete_rules((("embed", None), ("vocab", "fsdp"), ("batch", "fsdp")))
  mesh = mesh_lib.make_mesh(cfg.mesh)
  with mesh_lib.activate(mesh, rules):
    factory = StateSpec(LMFamily(cfg).make_model, optim.optimizer(cfg.train), mesh)
  sharding = dict(nnx.to_flat_state(factory.shardings.params))[("embed_VD",)].get_value()
  assert sharding.spec == P("fsdp", None)


def _mesh(shape):
  data, fsdp, tensor = shape
  cfg = tiny_config(f"mesh.data={data}", f"mesh.fsdp={fsdp}", f"mesh.tensor={tensor}")
  return cfg, mesh_lib.make_mesh(cfg.mesh, jax.devices()[:data * fsdp * tensor])


def test_first_listed_rule_wins_and_later_ones_are_fallbacks():
  """A logical axis listed twice resolves as flax (and MaxText) resolve it: the first rule
  whose mesh axes the array has not used yet; the batch size, the batch's sharding and
  every activation agree."""
  _, mesh = _mesh((2, 4, 1))
  rules = mesh_lib.complete_rules((("batch", "data"), ("batch", "fsdp"),
                                   ("act_embed", "data"), ("act_embed", "fsdp")))
  assert mesh_lib.logical_to_spec(("batch", "length"), rules) == P("data", None)
  assert mesh_lib.logical_to_spec(("act_embed",), rules) == P("data")
  # `data` is the batch's, so the embedding falls back to its second rule.
  assert mesh_lib.logical_to_spec(("batch", "length", "act_embed"), rules) == P(
      "data", None, "fsdp")
  assert mesh_lib.batch_sharding(mesh, rules).spec == P("data", None)
  assert mesh_lib.data_parallel_size(mesh, rules) == 2
  # The same on a table that was not completed.
  raw = (("batch", "data"), ("batch", "fsdp"))
  assert mesh_lib.data_parallel_size(mesh, raw) == 2 == mesh.shape[
      mesh_lib.batch_sharding(mesh, raw).spec[0]]


def test_parameters_take_the_first_rule_of_a_repeated_axis():
  cfg, mesh = _mesh((1, 2, 4))
  rules = mesh_lib.complete_rules((("embed", "fsdp"), ("embed", "tensor"), ("vocab", "tensor")))
  with mesh_lib.activate(mesh, rules):
    factory = StateSpec(LMFamily(cfg).make_model, optim.optimizer(cfg.train), mesh)
  shardings = dict(nnx.to_flat_state(factory.shardings.params))
  assert shardings[("embed_VD",)].get_value().spec == P("tensor", "fsdp")
  assert shardings[("final_norm", "scale")].get_value().spec == P("fsdp")


@pytest.mark.parametrize("first, then, fails", [("fsdp", "tensor", False),
                                                ("tensor", "fsdp", True)])
def test_divisibility_is_checked_on_the_shardings_applied(first, then, fails):
  """d_model 32 splits over fsdp=2, not over tensor=3: only the rule that applies counts."""
  cfg, mesh = _mesh((1, 2, 3))
  rules = mesh_lib.complete_rules((("embed", first), ("embed", then)))
  abstract = nnx.state(nnx.eval_shape(LMFamily(cfg).make_model))  # outside the mesh
  if fails:
    with pytest.raises(ConfigError, match="'embed' size 32, not divisible by mesh "
                                                   r"axes \('tensor',\) of total size 3"):
      mesh_lib.check_divisible(abstract, mesh, rules)
    return
  mesh_lib.check_divisible(abstract, mesh, rules)
  with mesh_lib.activate(mesh, rules):
    factory = StateSpec(LMFamily(cfg).make_model, optim.optimizer(cfg.train), mesh)
  for (path, var), (_, sharding) in zip(nnx.to_flat_state(abstract),
                                        nnx.to_flat_state(factory.shardings.params)):
    for dim, axes in zip(var.shape, sharding.get_value().spec):
      ways = np.prod([mesh.shape[a] for a in jax.tree.leaves(axes)]) if axes else 1
      assert dim % ways == 0, path


def test_a_parameter_whose_first_rules_share_a_mesh_axis_is_a_config_error():
  """Activations resolve (vocab, embed) -> (tensor, fsdp) by the fallback; Flax NNX creates
  a parameter by each axis's first rule, which would put `tensor` on both dimensions."""
  cfg, mesh = _mesh((1, 2, 2))
  rules = mesh_lib.complete_rules((("vocab", "tensor"), ("embed", "tensor"), ("embed", "fsdp")))
  assert mesh_lib.logical_to_spec(("vocab", "embed"), rules) == P("tensor", "fsdp")
  abstract = nnx.state(nnx.eval_shape(LMFamily(cfg).make_model))
  with pytest.raises(ConfigError, match=r"embed_VD.*'tensor'"):
    mesh_lib.check_divisible(abstract, mesh, rules)
