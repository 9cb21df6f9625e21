"""Training objectives (LM, diffusion) and the held-out statistics evaluated beside them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from scaling.generate import diffusion


def lm_loss(logits_BLV: jax.Array, targets_BL: jax.Array, mask_BL: jax.Array):
  """Mean next-token cross-entropy over the masked positions of the whole batch."""
  nll_BL = optax.softmax_cross_entropy_with_integer_labels(logits_BLV, targets_BL)
  n_tokens = jnp.maximum(mask_BL.sum(), 1.0)
  return (nll_BL * mask_BL).sum() / n_tokens


def lm_eval_sums(logits_BLV: jax.Array, targets_BL: jax.Array, mask_BL: jax.Array):
  """Sums over a batch, to be added up across batches and divided at the end.

  `exact`: examples whose every masked target is the argmax, i.e. what greedy decoding
  would produce under teacher forcing.
  """
  nll_BL = optax.softmax_cross_entropy_with_integer_labels(logits_BLV, targets_BL)
  correct_BL = (logits_BLV.argmax(-1) == targets_BL) | (mask_BL == 0)
  has_target_B = mask_BL.sum(-1) > 0
  return {
      "nll": (nll_BL * mask_BL).sum(),
      "tokens": mask_BL.sum(),
      "correct_tokens": ((logits_BLV.argmax(-1) == targets_BL) * mask_BL).sum(),
      "exact": (correct_BL.all(-1) & has_target_B).sum(),
      "examples": has_target_B.sum(),
  }


def diffusion_loss(model_fn, x0_BHWC: jax.Array, labels_B: jax.Array, rng: jax.Array,
                   schedule: diffusion.Schedule, *, prediction: str, label_dropout: float,
                   null_class: int) -> jax.Array:
  """Mean squared error on the `eps` or `v` target at uniform timesteps and Gaussian noise.

  Each label becomes `null_class` with probability `label_dropout`, so one model also
  learns the unconditional prediction that classifier-free guidance needs.
  """
  t_rng, noise_rng, drop_rng = jax.random.split(rng, 3)
  B = x0_BHWC.shape[0]
  t_B = jax.random.randint(t_rng, (B,), 0, schedule.timesteps)
  noise_BHWC = jax.random.normal(noise_rng, x0_BHWC.shape, jnp.float32)
  x_BHWC = diffusion.q_sample(schedule, x0_BHWC, t_B, noise_BHWC)
  drop_B = jax.random.bernoulli(drop_rng, label_dropout, (B,))
  labels_B = jnp.where(drop_B, null_class, labels_B)
  out_BHWC = model_fn(x_BHWC, t_B, labels_B)
  target_BHWC = diffusion.target(schedule, x0_BHWC, noise_BHWC, t_B, prediction)
  return jnp.mean(jnp.square(out_BHWC.astype(jnp.float32) - target_BHWC))


def denoising_errors(model_fn, x0_BHWC: jax.Array, labels_B: jax.Array, rng: jax.Array,
                     schedule: diffusion.Schedule, *, prediction: str,
                     timesteps: tuple[int, ...]) -> jax.Array:
  """Each example's mean squared error on the target at each fixed timestep, [T', B].

  The conditional labels are used as given; the noise comes from `rng` (fix it for
  numbers comparable across checkpoints).
  """
  B = x0_BHWC.shape[0]

  def at(args):
    t, key = args
    t_B = jnp.full((B,), t)
    noise_BHWC = jax.random.normal(key, x0_BHWC.shape, jnp.float32)
    out_BHWC = model_fn(diffusion.q_sample(schedule, x0_BHWC, t_B, noise_BHWC), t_B, labels_B)
    target_BHWC = diffusion.target(schedule, x0_BHWC, noise_BHWC, t_B, prediction)
    return jnp.square(out_BHWC.astype(jnp.float32) - target_BHWC).reshape(B, -1).mean(-1)

  ts = jnp.asarray(timesteps, jnp.int32)
  # One model trace for all timesteps, each on the batch as it is sharded.
  return jax.lax.map(at, (ts, jax.random.split(rng, len(timesteps))))


def denoising_sums(model_fn, x0_BHWC: jax.Array, labels_B: jax.Array, rng: jax.Array,
                   schedule: diffusion.Schedule, *, prediction: str,
                   timesteps: tuple[int, ...], mask_B: jax.Array | None = None):
  """Held-out denoising error at fixed timesteps, to be summed across batches.

  Returns `mse` [len(timesteps)]: the sum over (unmasked) examples of each one's mean
  squared error on the target, and `examples` [len(timesteps)]: how many were summed.
  """
  B = x0_BHWC.shape[0]
  mask_B = jnp.ones((B,), jnp.float32) if mask_B is None else mask_B.astype(jnp.float32)
  err_TB = denoising_errors(model_fn, x0_BHWC, labels_B, rng, schedule,
                            prediction=prediction, timesteps=timesteps)
  return {"mse": (err_TB * mask_B).sum(-1),
          "examples": jnp.full((len(timesteps),), mask_B.sum())}
