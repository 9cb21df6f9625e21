"""The train state (step, parameters, optimizer state) and its sharding over the mesh."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from scaling.models.lm import LM


@struct.dataclass
class TrainState:
  step: jax.Array
  params: nnx.State
  opt_state: Any


def make_model(model_cfg, vocab_size: int, seed: int) -> nnx.Module:
  """The model; its parameters are sharded as created when a mesh is active."""
  if model_cfg.kind != "lm":
    raise ValueError(f"unknown model kind {model_cfg.kind!r}")
  # Outside a mesh there is nothing to shard onto: keep the names, place on one device.
  with nnx.use_eager_sharding(not jax.sharding.get_abstract_mesh().empty):
    return LM(model_cfg, vocab_size, rngs=nnx.Rngs(params=seed))


class StateFactory:
  """Builds the model's graph, the abstract train state and its shardings, and inits it.

  Call inside `mesh_lib.activate(mesh, rules)`: the logical names of every parameter
  (and of the optimizer moments that mirror them) resolve through the active rules.
  """

  def __init__(self, model_cfg, vocab_size: int, seed: int,
               tx: optax.GradientTransformation, mesh: jax.sharding.Mesh):
    self.tx = tx

    def init() -> TrainState:
      model = make_model(model_cfg, vocab_size, seed)
      params = nnx.state(model, nnx.Param)
      return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params))

    self._init = init
    abstract_model = nnx.eval_shape(lambda: make_model(model_cfg, vocab_size, seed))
    self.graphdef, _ = nnx.split(abstract_model, nnx.Param)
    abstract = jax.eval_shape(init)
    self.shardings = nnx.get_named_sharding(abstract, mesh)
    self.abstract = jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract,
        self.shardings)

  def init(self) -> TrainState:
    """Fresh parameters, created directly in their shards."""
    return jax.jit(self._init, out_shardings=self.shardings)()

  def model(self, params: nnx.State) -> nnx.Module:
    return nnx.merge(self.graphdef, params)

