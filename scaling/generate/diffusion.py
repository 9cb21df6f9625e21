"""Gaussian diffusion: noise schedules, the forward process, DDPM / DDIM samplers, guidance,
and the training objective (noise or v prediction) with its held-out denoising error.

Timesteps index a schedule of T steps, t in [0, T), and the model is given that index.
x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps with abar_t = prod_{s <= t} (1 - beta_s), so
t = 0 already holds a little noise and a sampler's last step (from t = 0) returns x0.
Schedules are computed in float64 and stored as float32.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


class SettingError(ValueError):
  """An impossible setting; `setting` names it (`steps`, `method`, `eta`, `guidance`,
  `prediction`, `schedule`, `timesteps`), so callers can report it as their own config
  field or command-line flag."""

  def __init__(self, setting: str, message: str):
    super().__init__(message)
    self.setting = setting


SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("eps", "v")
METHODS = ("ddpm", "ddim")
COSINE_OFFSET = 0.008  # s in Nichol & Dhariwal (2021), eq. 17
MAX_BETA = 0.999       # keeps the last steps of a schedule from being singular

DenoiseFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True, eq=False)
class Schedule:
  """Per-timestep coefficients [T] (float32, on device) of a noise schedule.

  Jitted code closes over a schedule (its arrays become constants); it is not a pytree.
  """
  name: str
  betas: jax.Array
  alphas_cumprod: jax.Array                 # abar_t
  alphas_cumprod_prev: jax.Array            # abar_{t-1}, with abar_{-1} = 1
  sqrt_alphas_cumprod: jax.Array
  sqrt_one_minus_alphas_cumprod: jax.Array  # sigma_t, the noise level
  posterior_variance: jax.Array             # of q(x_{t-1} | x_t, x0)
  posterior_mean_coef1: jax.Array           # times x0
  posterior_mean_coef2: jax.Array           # times x_t
  alphas_cumprod_f64: np.ndarray            # host copy, for exact respacing

  @property
  def timesteps(self) -> int:
    return int(self.betas.shape[0])


def _betas(name: str, timesteps: int) -> np.ndarray:
  if name == "linear":
    # DDPM's 1e-4 .. 0.02 at T = 1000, scaled by 1000 / T (as in improved DDPM) so that
    # any T ends at the same, nearly pure, noise.
    scale = 1000.0 / timesteps
    betas = np.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=np.float64)
  elif name == "cosine":
    f = lambda u: np.cos((u + COSINE_OFFSET) / (1 + COSINE_OFFSET) * np.pi / 2) ** 2
    u = np.arange(timesteps, dtype=np.float64) / timesteps
    betas = 1 - f(u + 1 / timesteps) / f(u)
  else:
    raise SettingError("schedule", f"unknown {name!r}; choose {' or '.join(SCHEDULES)}")
  return np.minimum(betas, MAX_BETA)


def _from_betas(name: str, betas: np.ndarray) -> Schedule:
  alphas = 1.0 - betas
  ac = np.cumprod(alphas)
  ac_prev = np.concatenate([[1.0], ac[:-1]])
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  return Schedule(
      name=name, betas=f32(betas), alphas_cumprod=f32(ac), alphas_cumprod_prev=f32(ac_prev),
      sqrt_alphas_cumprod=f32(np.sqrt(ac)), sqrt_one_minus_alphas_cumprod=f32(np.sqrt(1 - ac)),
      posterior_variance=f32(betas * (1 - ac_prev) / (1 - ac)),
      posterior_mean_coef1=f32(betas * np.sqrt(ac_prev) / (1 - ac)),
      posterior_mean_coef2=f32((1 - ac_prev) * np.sqrt(alphas) / (1 - ac)),
      alphas_cumprod_f64=ac)


def make_schedule(name: str, timesteps: int, shift: float = 1.0) -> Schedule:
  """`linear` (DDPM) or `cosine` (improved DDPM) schedule of `timesteps` steps.

  `shift` > 1 moves every step's log signal-to-noise ratio down by 2 log(shift)
  (Hoogeboom et al. 2023): data whose pixels repeat (upscaled images, a clip's frames) keep
  their coarse structure visible through noise that would hide it in one small image, so
  the schedule must reach more noise for the model to learn that structure.
  """
  if timesteps < 1:
    raise SettingError("timesteps", f"must be at least 1, got {timesteps}")
  if not shift > 0:
    raise SettingError("schedule_shift", f"must be > 0, got {shift}")
  betas = _betas(name, timesteps)
  if shift != 1.0:
    ac = np.cumprod(1.0 - betas)
    shifted = 1.0 / (1.0 + np.exp(-(np.log(ac / (1.0 - ac)) - 2.0 * np.log(shift))))
    betas = np.minimum(1.0 - shifted / np.concatenate([[1.0], shifted[:-1]]), MAX_BETA)
  return _from_betas(name, betas)


def schedule_for(diffusion_cfg) -> Schedule:
  """The schedule a config's `diffusion` section names (runs saved before `schedule_shift`
  existed read as unshifted)."""
  return make_schedule(diffusion_cfg.schedule, diffusion_cfg.timesteps,
                       diffusion_cfg.get("schedule_shift", 1.0))


def spaced_timesteps(timesteps: int, steps: int) -> np.ndarray:
  """`steps` evenly spaced timesteps in [0, T), ascending; the last is always T - 1."""
  if not 1 <= steps <= timesteps:
    raise SettingError("steps", f"must be between 1 and the schedule's "
                      f"T={timesteps}, got {steps}")
  # Spacing >= 1 with round-half-up keeps them distinct.
  return np.floor(np.linspace(timesteps - 1, 0, steps) + 0.5).astype(np.int32)[::-1].copy()


def respace(schedule: Schedule, steps: int) -> tuple[np.ndarray, Schedule]:
  """The timesteps a `steps`-step sampler visits and the schedule over just those.

  Keeps abar at the kept timesteps and sets beta_i = 1 - abar_{t_i} / abar_{t_{i-1}}
  (improved DDPM), so `steps == T` gives back the original schedule.
  """
  ts = spaced_timesteps(schedule.timesteps, steps)
  ac = schedule.alphas_cumprod_f64[ts]
  betas = 1.0 - ac / np.concatenate([[1.0], ac[:-1]])
  return ts, _from_betas(schedule.name, betas)


def _at(values_T: jax.Array, t_B: jax.Array, ndim: int) -> jax.Array:
  """values[t] per example, shaped to broadcast over an array of `ndim` dimensions."""
  return values_T[t_B].reshape((-1,) + (1,) * (ndim - 1))


def q_sample(schedule: Schedule, x0: jax.Array, t_B: jax.Array, noise: jax.Array) -> jax.Array:
  """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise."""
  return (_at(schedule.sqrt_alphas_cumprod, t_B, x0.ndim) * x0
          + _at(schedule.sqrt_one_minus_alphas_cumprod, t_B, x0.ndim) * noise)


def _check_prediction(prediction: str) -> None:
  if prediction not in PREDICTIONS:
    raise SettingError("prediction", f"unknown {prediction!r}; "
                      f"choose {' or '.join(PREDICTIONS)}")


def target(schedule: Schedule, x0: jax.Array, noise: jax.Array, t_B: jax.Array,
           prediction: str) -> jax.Array:
  """What the model learns to output: `eps` (the noise) or `v` = a eps - s x0."""
  _check_prediction(prediction)
  if prediction == "eps":
    return noise
  return (_at(schedule.sqrt_alphas_cumprod, t_B, x0.ndim) * noise
          - _at(schedule.sqrt_one_minus_alphas_cumprod, t_B, x0.ndim) * x0)


def predict_x0_eps(schedule: Schedule, x_t: jax.Array, t_B: jax.Array, out: jax.Array,
                   prediction: str) -> tuple[jax.Array, jax.Array]:
  """The model output at x_t as estimates (x0_hat, eps_hat)."""
  _check_prediction(prediction)
  a = _at(schedule.sqrt_alphas_cumprod, t_B, x_t.ndim)
  s = _at(schedule.sqrt_one_minus_alphas_cumprod, t_B, x_t.ndim)
  if prediction == "eps":
    return (x_t - s * out) / a, out
  # With x_t = a x0 + s eps and v = a eps - s x0 (a^2 + s^2 = 1):
  return a * x_t - s * out, s * x_t + a * out


def posterior_mean_variance(schedule: Schedule, x0: jax.Array, x_t: jax.Array,
                            t_B: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mean and variance of q(x_{t-1} | x_t, x0); the variance broadcasts like the mean."""
  mean = (_at(schedule.posterior_mean_coef1, t_B, x_t.ndim) * x0
          + _at(schedule.posterior_mean_coef2, t_B, x_t.ndim) * x_t)
  return mean, _at(schedule.posterior_variance, t_B, x_t.ndim)


def ddim_step(x_t: jax.Array, x0_hat: jax.Array, eps_hat: jax.Array, abar_t, abar_prev,
              eta: float, noise: jax.Array | None) -> jax.Array:
  """One DDIM update (Song et al. 2021, eq. 12) from noise level abar_t to abar_prev.

  eta = 0 is deterministic; eta = 1 has DDPM's posterior variance.
  """
  sigma = eta * jnp.sqrt((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev))
  direction = jnp.sqrt(jnp.maximum(1 - abar_prev - sigma ** 2, 0.0)) * eps_hat
  x_prev = jnp.sqrt(abar_prev) * x0_hat + direction
  return x_prev if noise is None else x_prev + sigma * noise


def check_sampling(schedule: Schedule, *, steps: int, method: str, eta: float,
                   guidance: float, prediction: str) -> None:
  """Raises a SettingError (naming the setting) for impossible sampler settings."""
  spaced_timesteps(schedule.timesteps, steps)
  if method not in METHODS:
    raise SettingError("method", f"unknown {method!r}; choose {' or '.join(METHODS)}")
  if eta < 0:
    raise SettingError("eta", f"must be >= 0, got {eta}")
  if guidance < 0:
    raise SettingError("guidance", f"must be >= 0, got {guidance}")
  _check_prediction(prediction)


def sample(denoise_fn: DenoiseFn, schedule: Schedule, rng: jax.Array, shape: tuple[int, ...],
           labels_B: jax.Array, *, steps: int, method: str = "ddim", eta: float = 0.0,
           guidance: float = 1.0, null_class: int, prediction: str = "eps",
           clip_x0: bool = True, x_T: jax.Array | None = None,
           known: tuple[jax.Array, jax.Array] | None = None) -> jax.Array:
  """Images x0 [B, ...] by iterative denoising from Gaussian noise (or from `x_T`).

  `denoise_fn(x, t_B, labels_B)` is the model; it sees the original timesteps even when
  `steps` < T skips some. `method` is `ddim` (with `eta`) or `ddpm` (ancestral, posterior
  variance). Classifier-free guidance mixes the model outputs as
  uncond + guidance * (cond - uncond), from one forward over [x; x] with labels
  [labels; null_class]: 0 is unconditional, 1 purely conditional (then only the
  conditional half is run), > 1 guided. Guiding eps or v is the same, as each is affine
  in the other at fixed x_t. `clip_x0` clips x0_hat to [-1, 1] and recomputes eps_hat.
  `known` = (x0 [B, ...], mask broadcastable to it, 1 where known) fixes part of the
  result: before each step the known entries of x_t are replaced by x0 noised to that
  step's level, so the model draws the rest consistent with them (the replacement method;
  Song et al. 2021, Ho et al. 2022 for video), and the result holds x0 there exactly.
  Settings (steps, method, eta, guidance, ...) are Python values; the loop is a
  `lax.scan`, so the whole call can be jitted with the batch sharded.
  """
  check_sampling(schedule, steps=steps, method=method, eta=eta, guidance=guidance,
                 prediction=prediction)
  ts, sched = respace(schedule, steps)
  ts = jnp.asarray(ts)
  B = shape[0]
  init_rng, step_rng = jax.random.split(rng)
  x = jax.random.normal(init_rng, shape, jnp.float32) if x_T is None else x_T
  stochastic = method == "ddpm" or eta > 0

  def model_out(x, t_B):
    if guidance == 1.0:
      return denoise_fn(x, t_B, labels_B)
    null_B = jnp.full_like(labels_B, null_class)
    out = denoise_fn(jnp.concatenate([x, x]), jnp.concatenate([t_B, t_B]),
                     jnp.concatenate([labels_B, null_B]))
    cond, uncond = out[:B], out[B:]
    return uncond + guidance * (cond - uncond)

  def step(x, inputs):
    i, key = inputs
    i_B = jnp.full((B,), i)
    if known is not None:
      noise_key, key = jax.random.split(key)
      x = jnp.where(known[1], q_sample(sched, known[0], i_B,
                                       jax.random.normal(noise_key, shape, jnp.float32)), x)
    out = model_out(x, jnp.full((B,), ts[i]))
    x0_hat, eps_hat = predict_x0_eps(sched, x, i_B, out, prediction)
    if clip_x0:
      x0_hat = jnp.clip(x0_hat, -1.0, 1.0)
      eps_hat = ((x - _at(sched.sqrt_alphas_cumprod, i_B, x.ndim) * x0_hat)
                 / _at(sched.sqrt_one_minus_alphas_cumprod, i_B, x.ndim))
    noise = jax.random.normal(key, shape, jnp.float32) if stochastic else None
    if method == "ddim":
      x = ddim_step(x, x0_hat, eps_hat, sched.alphas_cumprod[i], sched.alphas_cumprod_prev[i],
                    eta, noise)
    else:
      mean, var = posterior_mean_variance(sched, x0_hat, x, i_B)
      x = mean + jnp.where(i > 0, jnp.sqrt(var), 0.0) * noise  # no noise into x0
    return x, None

  indices = jnp.arange(steps - 1, -1, -1)
  x, _ = jax.lax.scan(step, x, (indices, jax.random.split(step_rng, steps)))
  return x if known is None else jnp.where(known[1], known[0], x)


# --- training objective and held-out error -----------------------------------------


def diffusion_loss(model_fn, x0_BHWC: jax.Array, labels_B: jax.Array, rng: jax.Array,
                   schedule: Schedule, *, prediction: str, label_dropout: float,
                   null_class: int) -> jax.Array:
  """Mean squared error on the `eps` or `v` target at uniform timesteps and Gaussian noise.

  Each label becomes `null_class` with probability `label_dropout`, so one model also
  learns the unconditional prediction that classifier-free guidance needs.
  """
  t_rng, noise_rng, drop_rng = jax.random.split(rng, 3)
  B = x0_BHWC.shape[0]
  t_B = jax.random.randint(t_rng, (B,), 0, schedule.timesteps)
  noise_BHWC = jax.random.normal(noise_rng, x0_BHWC.shape, jnp.float32)
  x_BHWC = q_sample(schedule, x0_BHWC, t_B, noise_BHWC)
  drop_B = jax.random.bernoulli(drop_rng, label_dropout, (B,))
  labels_B = jnp.where(drop_B, null_class, labels_B)
  out_BHWC = model_fn(x_BHWC, t_B, labels_B)
  target_BHWC = target(schedule, x0_BHWC, noise_BHWC, t_B, prediction)
  return jnp.mean(jnp.square(out_BHWC.astype(jnp.float32) - target_BHWC))


def denoising_errors(model_fn, x0_BHWC: jax.Array, labels_B: jax.Array, rng: jax.Array,
                     schedule: Schedule, *, prediction: str,
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
    out_BHWC = model_fn(q_sample(schedule, x0_BHWC, t_B, noise_BHWC), t_B, labels_B)
    target_BHWC = target(schedule, x0_BHWC, noise_BHWC, t_B, prediction)
    return jnp.square(out_BHWC.astype(jnp.float32) - target_BHWC).reshape(B, -1).mean(-1)

  ts = jnp.asarray(timesteps, jnp.int32)
  # One model trace for all timesteps, each on the batch as it is sharded.
  return jax.lax.map(at, (ts, jax.random.split(rng, len(timesteps))))


def denoising_sums(model_fn, x0_BHWC: jax.Array, labels_B: jax.Array, rng: jax.Array,
                   schedule: Schedule, *, prediction: str,
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
