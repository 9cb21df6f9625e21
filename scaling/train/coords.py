"""Coordinate check (Yang et al. 2022, Tensor Programs V): the size of every layer's
activations after a few training steps, at several widths.

Under muP they stay about the same as the model widens; under the standard
parametrization the output layer's grow with width at a fixed learning rate, which is
why SP's best learning rate moves with width and muP's does not.
"""

from __future__ import annotations

import jax
import numpy as np

from scaling import mesh as mesh_lib
from scaling.families import family_for, validate
from scaling.numbers import fmt
from scaling.train.loop import make_train_step
from scaling.train.state import StateSpec


def widened(cfg, width: int, head_dim: int):
  """`cfg` at model width `width`: heads of `head_dim`, MLP 4x, everything else kept."""
  cfg = cfg.copy_and_resolve_references()
  with cfg.unlocked():
    cfg.model.update(d_model=width, n_heads=width // head_dim, n_kv_heads=width // head_dim,
                     d_ff=4 * width)
    cfg.mesh.update(data=1, fsdp=1, tensor=1)
  return cfg


def activation_scales(cfg, *, steps: int) -> list[dict[str, float]]:
  """Each layer's mean absolute activation before training and after each of `steps`
  steps on one fixed synthetic batch (one device)."""
  devices = jax.devices()[:1]
  mesh = validate(cfg, devices)
  rules = mesh_lib.complete_rules(cfg.mesh.rules)
  family = family_for(cfg)
  tx = family.optimizer()
  key = jax.random.key(cfg.seed)
  with mesh_lib.activate(mesh, rules):
    spec = StateSpec(family.make_model, tx, mesh, ema=family.ema_decay is not None)
    sharding = mesh_lib.batch_sharding(mesh, rules, ndim=1)  # every leaf: its leading axis
    batch = jax.device_put(family.synthetic_batch(np.random.default_rng(0)), sharding)
    train_step = make_train_step(spec, family, tx, sharding)
    measure = jax.jit(lambda params: family.activations(spec.model(params), batch, key))
    state = spec.init(cfg.seed)
    out = [measure(state.params)]
    for _ in range(steps):
      state, _ = train_step(state, batch, key, np.bool_(False))
      out.append(measure(state.params))
  return [{k: float(v) for k, v in jax.device_get(m).items()} for m in out]


def coordinate_check(cfg, widths, *, steps: int = 5, head_dim: int = 16) -> dict:
  """{width: per-layer scales after `steps` steps} for the config at every width."""
  return {int(w): activation_scales(widened(cfg, w, head_dim), steps=steps)[-1]
          for w in widths}


def growth(table: dict) -> dict[str, float]:
  """Each layer's scale at the largest width over its scale at the smallest."""
  small, large = table[min(table)], table[max(table)]
  return {k: large[k] / small[k] for k in small if k in large}


def report(table: dict, parametrization: str) -> str:
  layers = list(next(iter(table.values())))
  lines = [f"{parametrization}: mean |activation| after training, by width"]
  lines.append(f"  {'layer':<12}" + "".join(f"{w:>10}" for w in table) + f"{'x (max/min)':>13}")
  g = growth(table)
  for layer in layers:
    lines.append(f"  {layer:<12}" + "".join(f"{fmt(table[w][layer]):>10}" for w in table)
                 + f"{fmt(g[layer], 3):>13}")
  return "\n".join(lines)
