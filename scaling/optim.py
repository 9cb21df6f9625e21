"""Optax optimizer and learning-rate schedule from the `train` config section."""

from __future__ import annotations

import jax
import optax

from scaling.errors import ConfigError

SCHEDULES = ("cosine", "constant", "wsd")
OPTIMIZERS = ("adamw",)


def schedule(train_cfg) -> optax.Schedule:
  """Linear warmup, then cosine decay, constant, or warmup-stable-decay (WSD)."""
  peak, steps = train_cfg.learning_rate, train_cfg.steps
  warmup = min(train_cfg.warmup_steps, steps)
  final = peak * train_cfg.final_lr_fraction
  ramp = optax.linear_schedule(0.0, peak, max(warmup, 1))
  rest = max(steps - warmup, 1)
  if train_cfg.schedule == "cosine":
    after = optax.cosine_decay_schedule(peak, rest, alpha=train_cfg.final_lr_fraction)
  elif train_cfg.schedule == "constant":
    after = optax.constant_schedule(peak)
  elif train_cfg.schedule == "wsd":
    decay = max(int(rest * train_cfg.decay_fraction), 1)
    after = optax.join_schedules(
        [optax.constant_schedule(peak), optax.linear_schedule(peak, final, decay)],
        [rest - decay])
  else:
    raise ConfigError(f"config.train.schedule: unknown {train_cfg.schedule!r}; "
                      f"choose from {', '.join(SCHEDULES)}")
  return optax.join_schedules([ramp, after], [warmup])


def _decay_mask(params):
  """Weight decay on matrices only: norm scales are exempt."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: not any(getattr(k, "key", None) == "scale" for k in path), params)


def optimizer(train_cfg) -> optax.GradientTransformation:
  if train_cfg.optimizer != "adamw":
    raise ConfigError(f"config.train.optimizer: unknown {train_cfg.optimizer!r}; known: adamw")
  parts = []
  if train_cfg.grad_clip > 0:
    parts.append(optax.clip_by_global_norm(train_cfg.grad_clip))
  parts.append(optax.adamw(schedule(train_cfg), b1=train_cfg.b1, b2=train_cfg.b2,
                           weight_decay=train_cfg.weight_decay, mask=_decay_mask))
  return optax.chain(*parts)
