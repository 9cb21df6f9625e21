"""The train state (step, parameters, optimizer state, EMA) and its sharding over the mesh."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct


@struct.dataclass
class TrainState:
  step: jax.Array
  params: nnx.State
  opt_state: Any
  ema: nnx.State | None = None  # Exponential moving average of `params`, where kept.


class StateSpec:
  """What a run's train state is: the model's graph, the abstract state, its shardings.

  `make(rngs)` creates the model. Build inside `mesh_lib.activate(mesh, rules)`: the
  logical names of every parameter (and of the optimizer moments and EMA that mirror
  them) resolve through the active rules. `init(seed)` takes the seed as a traced key,
  so runs that differ only in their seed share one compiled initialiser (and, with the
  persistent compilation cache, one compilation).
  """

  def __init__(self, make: Callable[[nnx.Rngs], nnx.Module], tx: optax.GradientTransformation,
               mesh: jax.sharding.Mesh, *, ema: bool = False):
    self.tx = tx

    def init(key) -> TrainState:
      params = nnx.state(make(nnx.Rngs(params=key)), nnx.Param)
      return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params),
                        jax.tree.map(jnp.copy, params) if ema else None)

    self.graphdef, _ = nnx.split(nnx.eval_shape(lambda: make(nnx.Rngs(params=0))), nnx.Param)
    abstract = jax.eval_shape(init, jax.random.key(0))
    self.shardings = nnx.get_named_sharding(abstract, mesh)
    self.abstract = jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract,
        self.shardings)
    self._jitted_init = jax.jit(init, out_shardings=self.shardings)

  def init(self, seed: int) -> TrainState:
    """Fresh parameters, created directly in their shards."""
    return self._jitted_init(jax.random.key(seed))

  def model(self, params: nnx.State) -> nnx.Module:
    return nnx.merge(self.graphdef, params)
