"""Device mesh, logical-axis rules and the shardings they imply.

Model code names the axes of every parameter and activation logically (`embed`, `heads`,
`batch`, ...). A rules table maps those names to the mesh axes `data`, `fsdp`, `tensor`, so
changing a run's parallelism means editing the table or the mesh sizes, never the model.
"""

from __future__ import annotations

import contextlib
import math
from typing import Sequence

import jax
import numpy as np
from flax import linen, nnx
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from scaling.errors import ConfigError

MESH_AXES = ("data", "fsdp", "tensor")
LOGICAL_AXES = (
    # parameters
    "vocab", "embed", "heads", "kv", "head_dim", "mlp", "layers", "patch", "cond", "cond_embed",
    # activations
    "batch", "length", "act_embed", "act_heads", "act_mlp",
)

Rules = tuple[tuple[str, str | tuple[str, ...] | None], ...]

# The default table (`config.mesh.rules`): the batch is split over both data-parallel axes,
# FSDP shards the embedding dimension of every weight, tensor parallelism splits heads,
# MLP and vocabulary. Axes it leaves out (`length`, `act_embed`, `patch`, `cond`, ...) are
# replicated.
DEFAULT_RULES: Rules = (
    ("batch", ("data", "fsdp")),
    ("act_heads", "tensor"),
    ("act_mlp", "tensor"),
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("heads", "tensor"),
    ("kv", "tensor"),
    ("mlp", "tensor"),
)


def mesh_shape(mesh_cfg, num_devices: int) -> tuple[int, int, int]:
  """Resolves the configured axis sizes; one `-1` takes the remaining devices."""
  sizes = [int(mesh_cfg[axis]) for axis in MESH_AXES]
  fill = [axis for axis, size in zip(MESH_AXES, sizes) if size == -1]
  if len(fill) > 1:
    raise ConfigError(f"config.mesh: only one axis may be -1, got {', '.join(fill)}")
  for axis, size in zip(MESH_AXES, sizes):
    if size == 0 or size < -1:
      raise ConfigError(f"config.mesh.{axis}: size must be positive or -1, got {size}")
  known = math.prod(s for s in sizes if s != -1)
  if fill:
    if num_devices % known:
      raise ConfigError(
          f"config.mesh: {num_devices} devices cannot be split into the fixed axes "
          f"(product {known}) with mesh.{fill[0]}=-1")
    sizes[MESH_AXES.index(fill[0])] = num_devices // known
  if math.prod(sizes) != num_devices:
    raise ConfigError(
        f"config.mesh: data*fsdp*tensor = {'*'.join(map(str, sizes))} = {math.prod(sizes)} "
        f"but {num_devices} devices are available")
  return tuple(sizes)


def make_mesh(mesh_cfg, devices: Sequence[jax.Device] | None = None) -> jax.sharding.Mesh:
  """A mesh over `devices` (default: all) with Auto axes, as GSPMD sharding rules want."""
  devices = list(devices if devices is not None else jax.devices())
  shape = mesh_shape(mesh_cfg, len(devices))
  return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES),
                       devices=devices)


def complete_rules(rules) -> Rules:
  """Validates a rules table and maps every logical axis it omits to None (replicated)."""
  table = {}
  for entry in rules:
    if len(entry) != 2:
      raise ConfigError(f"config.mesh.rules: each rule is (logical, mesh axes), got {entry!r}")
    logical, target = entry
    if logical not in LOGICAL_AXES:
      raise ConfigError(
          f"config.mesh.rules: unknown logical axis {logical!r}; known: {', '.join(LOGICAL_AXES)}")
    targets = (target,) if isinstance(target, str) else tuple(target or ())
    for t in targets:
      if t not in MESH_AXES:
        raise ConfigError(f"config.mesh.rules: {logical!r} maps to unknown mesh axis {t!r}")
    table[logical] = targets[0] if len(targets) == 1 else (targets or None)
  return tuple((name, table.get(name)) for name in LOGICAL_AXES)


def logical_to_spec(names: Sequence[str | None], rules: Rules) -> PartitionSpec:
  """PartitionSpec for an array whose dimensions carry the given logical names."""
  return linen.logical_to_mesh_axes(tuple(names), rules)


@contextlib.contextmanager
def activate(mesh: jax.sharding.Mesh, rules: Rules):
  """Makes `mesh` and `rules` current: NNX variables and `constrain` resolve through them."""
  with jax.set_mesh(mesh), nnx.logical_axis_rules(rules):
    yield


def constrain(x: jax.Array, names: Sequence[str | None]) -> jax.Array:
  """Constrains an activation's sharding by logical names (the rules `activate` made
  current); a no-op outside a mesh."""
  return linen.with_logical_constraint(x, tuple(names))


def batch_sharding(mesh: jax.sharding.Mesh, rules: Rules, ndim: int = 2) -> NamedSharding:
  """Sharding of a [batch, length, ...] input array."""
  return NamedSharding(mesh, logical_to_spec(("batch",) + (None,) * (ndim - 1), rules))


def data_parallel_size(mesh: jax.sharding.Mesh, rules: Rules) -> int:
  """How many ways the batch axis is split."""
  target = dict(rules).get("batch")
  axes = (target,) if isinstance(target, str) else tuple(target or ())
  return int(np.prod([mesh.shape[a] for a in axes])) if axes else 1


def check_divisible(abstract_state, mesh: jax.sharding.Mesh, rules: Rules) -> None:
  """Fails with the parameter's name if a sharded dimension does not divide its mesh axes."""
  table = dict(rules)
  flat = nnx.to_flat_state(abstract_state)
  for path, var in flat:
    names = var.get_metadata().get("out_sharding") or ()
    for dim, name in zip(var.shape, names):
      target = table.get(name)
      axes = (target,) if isinstance(target, str) else tuple(target or ())
      ways = int(np.prod([mesh.shape[a] for a in axes])) if axes else 1
      if dim % ways:
        raise ConfigError(
            f"config.mesh: parameter {'.'.join(map(str, path))} has {name!r} size {dim}, "
            f"not divisible by mesh axes {axes} of total size {ways}")
