"""Parameter and update norms per layer group, computed inside the train step.

A group is the module that holds a parameter (`blocks.2.attn`, `final_norm`, a top-level
parameter by its own name); parameters stacked on a leading `layers` axis split into one
group per layer. A layer whose update norm collapses or explodes, or whose weights grow
without bound, shows in these curves long before the loss says anything.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx


@dataclasses.dataclass(frozen=True)
class LayerGroups:
  names: tuple[str, ...]
  # Per parameter, in tree order: its group's index, or one index per layer when stacked.
  of_leaf: tuple[int | tuple[int, ...], ...]

  @classmethod
  def of(cls, abstract_params: nnx.State) -> "LayerGroups":
    """The groups of a (possibly abstract) parameter state whose variables carry logical
    axis names (`out_sharding`)."""
    names: dict[str, int] = {}
    index = lambda name: names.setdefault(name, len(names))
    of_leaf = []
    flat, _ = jax.tree_util.tree_flatten_with_path(
        abstract_params, is_leaf=lambda x: isinstance(x, nnx.Variable))
    for path, var in flat:
      keys = [str(getattr(k, "key", getattr(k, "name", k))) for k in path]
      module = keys[:-1] or keys
      axes = var.get_metadata().get("out_sharding") or ()
      if axes and axes[0] == "layers":
        of_leaf.append(tuple(index(".".join([module[0], str(i), *module[1:]]))
                             for i in range(var.shape[0])))
      else:
        of_leaf.append(index(".".join(module)))
    return cls(tuple(names), tuple(of_leaf))

  def norms(self, prefix: str, params) -> dict[str, jax.Array]:
    """`{prefix}/{group}`: the L2 norm of each group's parameters (float32)."""
    squares = [jnp.zeros((), jnp.float32) for _ in self.names]
    leaves = jax.tree.leaves(params)
    assert len(leaves) == len(self.of_leaf), "params do not match their groups"
    for x, group in zip(leaves, self.of_leaf):
      x = x.astype(jnp.float32)
      if isinstance(group, tuple):
        per_layer = jnp.sum(x * x, axis=tuple(range(1, x.ndim)))
        for layer, g in enumerate(group):
          squares[g] = squares[g] + per_layer[layer]
      else:
        squares[group] = squares[group] + jnp.sum(x * x)
    return {f"{prefix}/{name}": jnp.sqrt(s) for name, s in zip(self.names, squares)}
