"""The train state (step, parameters, optimizer state) and its sharding over the mesh."""

from __future__ import annotations

from typing import Any, Callable

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
  ema: nnx.State | None = None  # Exponential moving average of `params`, where kept.


def eager_sharding():
  """Parameters are created in their shards under a mesh; outside one there is nothing
  to shard onto, so they keep their logical names and live on one device."""
  return nnx.use_eager_sharding(not jax.sharding.get_abstract_mesh().empty)


def make_model(model_cfg, vocab_size: int, seed: int) -> nnx.Module:
  """The language model; its parameters are sharded as created when a mesh is active."""
  with eager_sharding():
    return LM(model_cfg, vocab_size, rngs=nnx.Rngs(params=seed))


class StateFactory:
  """Builds the model's graph, the abstract train state and its shardings, and inits it.

  `make` creates the model. Call inside `mesh_lib.activate(mesh, rules)`: the logical
  names of every parameter (and of the optimizer moments and EMA that mirror them)
  resolve through the active rules.
  """

  def __init__(self, make: Callable[[], nnx.Module], tx: optax.GradientTransformation,
               mesh: jax.sharding.Mesh, *, ema: bool = False):
    self.tx = tx

    def init() -> TrainState:
      params = nnx.state(make(), nnx.Param)
      return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params),
                        jax.tree.map(jnp.copy, params) if ema else None)

    self._init = init
    self.graphdef, _ = nnx.split(nnx.eval_shape(make), nnx.Param)
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
