"""A run's compiled programs (initialiser, train step, eval step), built once per process
for each config, mesh and rules table.

Training the same config again in one process (a run resumed where it stopped, a run
compared with its uninterrupted twin, a retry) then reuses the traced and compiled
programs. The persistent compilation cache (`scaling.compile_cache`) saves only XLA's
compilation; tracing and lowering a tiny model's step cost about as much again.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Callable

import jax

from scaling import mesh as mesh_lib
from scaling.train.state import StateSpec

# Each entry holds executables; a process trains one or two configs, a test session more.
_KEEP = 8
_built: collections.OrderedDict = collections.OrderedDict()


@dataclasses.dataclass(frozen=True)
class Programs:
  spec: StateSpec
  batch_sharding: jax.sharding.NamedSharding
  train_step: object  # loop.make_train_step's jitted function
  eval_step: object


def for_run(cfg, mesh: jax.sharding.Mesh, rules: mesh_lib.Rules,
            build: Callable[[], Programs]) -> Programs:
  """The programs of `cfg` on `mesh` under `rules`; `build()` makes them the first time.
  Call inside `mesh_lib.activate(mesh, rules)`.

  Everything the programs depend on is in the key: the whole config (the family and its
  data follow from it), the devices and axes of the mesh, and the rules. The functions
  close over the first caller's family, which equals any later caller's.
  """
  key = (cfg.to_json(sort_keys=True), mesh, rules)
  if key in _built:
    _built.move_to_end(key)
    return _built[key]
  programs = build()
  _built[key] = programs
  while len(_built) > _KEEP:
    _built.popitem(last=False)
  return programs
