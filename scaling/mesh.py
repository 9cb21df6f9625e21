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
    "codebooks", "codes",
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
  """Validates a rules table, keeping its order: that is its priority (`logical_to_spec`).

  A logical axis may be listed more than once (MaxText-style fallbacks): in each array the
  first of its rules whose mesh axes no other dimension has taken applies. Axes the table
  omits are replicated.
  """
  table = []
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
    table.append((logical, targets[0] if len(targets) == 1 else (targets or None)))
  first = {}
  for logical, target in table:
    first.setdefault(logical, target)
  names = [logical for logical, _ in table]
  # Flax NNX creates parameters through a plain mapping of the table, in which an axis's
  # last entry wins: a repeated axis's first rule goes last too. It changes no resolution
  # (by then the axis is assigned, or that rule's mesh axes are taken). Omitted axes are
  # named so that the mapping does not take them for mesh axes.
  repeated = tuple((n, first[n]) for n in first if names.count(n) > 1)
  omitted = tuple((n, None) for n in LOGICAL_AXES if n not in first)
  return tuple(table) + repeated + omitted


def logical_to_spec(names: Sequence[str | None], rules: Rules | None = None) -> PartitionSpec:
  """PartitionSpec for an array whose dimensions carry the given logical names (default
  rules: the active ones), as flax resolves activation constraints: rules in table order,
  each applied to its logical axis if that axis is still unassigned and its mesh axes are
  still free in this array. The batch and every check resolve here; `check_divisible`
  makes sure Flax NNX creates each parameter with this spec too."""
  return linen.logical_to_mesh_axes(tuple(names), rules)


def _ways(mesh: jax.sharding.Mesh, entry) -> int:
  """How many shards one PartitionSpec entry splits its dimension into."""
  axes = (entry,) if isinstance(entry, str) else tuple(entry or ())
  return int(np.prod([mesh.shape[a] for a in axes])) if axes else 1


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
  return _ways(mesh, logical_to_spec(("batch",), rules)[0])


def check_divisible(abstract_state, mesh: jax.sharding.Mesh, rules: Rules) -> None:
  """Fails with the parameter's name if a sharded dimension does not divide its mesh axes,
  or if Flax NNX would create a parameter other than `logical_to_spec` resolves it."""
  flat = nnx.to_flat_state(abstract_state)
  for path, var in flat:
    names = tuple(var.get_metadata().get("out_sharding") or ())
    name = ".".join(map(str, path))
    spec = logical_to_spec(names, rules)
    with nnx.logical_axis_rules(rules):
      created = nnx.spmd.get_var_pspec(var)  # by each axis's first rule, no fallbacks
    if names and tuple(created) != tuple(spec):
      used = jax.tree.leaves(tuple(created))
      shared = sorted({a for a in used if used.count(a) > 1})
      raise ConfigError(
          f"config.mesh.rules: parameter {name} {names}: the first rules of its axes put "
          f"mesh axis {', '.join(map(repr, shared))} on two dimensions ({created}); Flax NNX "
          "creates parameters by each axis's first rule (fallbacks apply to activations "
          "only), so give one of these axes a first rule on another mesh axis")
    for dim, logical, entry in zip(var.shape, names, spec):
      if dim % _ways(mesh, entry):
        axes = (entry,) if isinstance(entry, str) else tuple(entry)
        raise ConfigError(
            f"config.mesh: parameter {name} has {logical!r} size {dim}, "
            f"not divisible by mesh axes {axes} of total size {_ways(mesh, entry)}")
