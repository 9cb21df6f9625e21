"""Optax optimizer and learning-rate schedule from the `train` config section, with muP's
per-parameter learning rates.

Under muP (`model.parametrization="mup"`, Yang et al. 2022, Tensor Programs V, the Adam
table) each parameter's rule follows from the logical names of its dimensions, never from
model code. Width axes are `embed`, `mlp`, `heads`, `kv`, `head_dim` and `cond_embed`
(the `layers` axis of stacked weights does not count):

  hidden weights   two or more width axes (attention q/k/v/o, MLP, the DiT's timestep and
                   adaLN projections from the conditioning vector): init std 1/sqrt(fan_in)
                   as under SP, Adam learning rate x base_width / d_model
  vector-like      one width axis (token embedding, untied head, patch embedding, class
                   table, output projection, biases) and norm scales: unscaled
  readout          the model multiplies its logits (LM) or output projection (DiT) by
                   base_width / d_model (`scaling.models.layers.readout_multiplier`)
  attention        scores scaled by 1/head_dim instead of 1/sqrt(head_dim)

At d_model == base_width muP and SP share the optimizer and the readout; the attention
scale differs, and the LM's untied head starts at zero under muP (`scaling.models.lm`).
"""

from __future__ import annotations

from typing import Callable

import jax
import optax
from flax import nnx

from scaling.errors import ConfigError

def _wsd(train_cfg, peak: float, rest: int) -> optax.Schedule:
  """Warmup-stable-decay's phases after the warmup: constant, then linear to the final
  rate over the last `decay_fraction` of the steps."""
  decay = max(int(rest * train_cfg.decay_fraction), 1)
  return optax.join_schedules(
      [optax.constant_schedule(peak),
       optax.linear_schedule(peak, peak * train_cfg.final_lr_fraction, decay)], [rest - decay])


# What follows the warmup, by `train.schedule`: (train section, peak rate, steps after the
# warmup) -> schedule.
_AFTER_WARMUP = {
    "cosine": lambda t, peak, rest: optax.cosine_decay_schedule(
        peak, rest, alpha=t.final_lr_fraction),
    "constant": lambda t, peak, rest: optax.constant_schedule(peak),
    "wsd": _wsd,
}
SCHEDULES = tuple(_AFTER_WARMUP)
OPTIMIZERS = ("adamw",)


def check(train_cfg) -> None:
  """The one check of the `train` section's schedule and optimizer names (config
  validation calls it; `schedule` and `optimizer` expect names it accepted)."""
  for field, known in (("schedule", SCHEDULES), ("optimizer", OPTIMIZERS)):
    if train_cfg[field] not in known:
      raise ConfigError(f"config.train.{field}: unknown {train_cfg[field]!r}; "
                        f"choose from {', '.join(known)}")


def schedule(train_cfg) -> optax.Schedule:
  """Linear warmup, then cosine decay, constant, or warmup-stable-decay (WSD)."""
  peak, steps = train_cfg.learning_rate, train_cfg.steps
  warmup = min(train_cfg.warmup_steps, steps)
  ramp = optax.linear_schedule(0.0, peak, max(warmup, 1))
  after = _AFTER_WARMUP[train_cfg.schedule](train_cfg, peak, max(steps - warmup, 1))
  return optax.join_schedules([ramp, after], [warmup])


def _decay_mask(params):
  """Weight decay on matrices only: norm scales are exempt."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: not any(getattr(k, "key", None) == "scale" for k in path), params)


WIDTH_AXES = ("embed", "mlp", "heads", "kv", "head_dim", "cond_embed")


def _key(path) -> tuple:
  """A parameter's path in an nnx.State, as `nnx.to_flat_state` names it."""
  return tuple(k.key for k in path if isinstance(k, jax.tree_util.DictKey))


def lr_scales(abstract_params: nnx.State, model_cfg) -> dict[tuple, float] | None:
  """Each parameter's learning-rate factor under muP, by path (None under SP)."""
  if model_cfg.parametrization != "mup":
    return None
  ratio = model_cfg.base_width / model_cfg.d_model
  out = {}
  for path, var in nnx.to_flat_state(abstract_params):
    names = var.get_metadata().get("out_sharding") or ()
    hidden = sum(n in WIDTH_AXES for n in names if n != "layers") >= 2
    out[tuple(path)] = ratio if hidden else 1.0
  return out


def scale_by_table(table: dict[tuple, float]) -> optax.GradientTransformation:
  """Multiplies each parameter's update by its factor in `table` (keyed by path)."""
  def update(updates, state, params=None):
    del params
    scaled = jax.tree_util.tree_map_with_path(lambda p, u: u * table[_key(p)], updates)
    return scaled, state
  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def optimizer(train_cfg, scales: dict[tuple, float] | None = None
              ) -> optax.GradientTransformation:
  """AdamW (decoupled weight decay on matrices) after global-norm clipping; `scales`
  multiplies each parameter's update (muP's learning rates, see `lr_scales`)."""
  assert train_cfg.optimizer == "adamw", train_cfg.optimizer  # see `check`
  parts = []
  if train_cfg.grad_clip > 0:
    parts.append(optax.clip_by_global_norm(train_cfg.grad_clip))
  parts.append(optax.adamw(schedule(train_cfg), b1=train_cfg.b1, b2=train_cfg.b2,
                           weight_decay=train_cfg.weight_decay, mask=_decay_mask))
  if scales is not None:
    parts.append(scale_by_table(scales))
  return optax.chain(*parts)


def for_model(cfg, make_model: Callable[[], nnx.Module]) -> optax.GradientTransformation:
  """The run's optimizer, with the per-parameter factors its parametrization asks for."""
  abstract = nnx.state(nnx.eval_shape(make_model), nnx.Param)
  return optimizer(cfg.train, lr_scales(abstract, cfg.model))
