"""Diffusion math against float64 references; samplers against exact Gaussian denoisers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling.generate import diffusion
from scaling.generate import diffusion as objectives

T = 1000


def _cosine_abar(T, s=0.008):
  """abar_t = f(t + 1) / f(0), f(u) = cos^2((u / T + s) / (1 + s) * pi / 2)."""
  f = lambda u: np.cos((u / T + s) / (1 + s) * np.pi / 2) ** 2
  return f(np.arange(1, T + 1, dtype=np.float64)) / f(0.0)


def _betas64(kind, T):
  """The schedules as their papers define them, in float64 (linear: scaled by 1000 / T)."""
  if kind == "linear":
    return np.linspace(1e-4, 0.02, 1000) if T == 1000 else np.linspace(0.1 / T, 20.0 / T, T)
  abar = _cosine_abar(T)
  return np.minimum(1 - abar / np.concatenate([[1.0], abar[:-1]]), 0.999)


@pytest.mark.parametrize("kind,T", [("linear", 1000), ("linear", 100), ("cosine", 1000),
                                    ("cosine", 64)])
def test_schedules_match_closed_forms(kind, T):
  sched = diffusion.make_schedule(kind, T)
  betas = _betas64(kind, T)
  abar = np.cumprod(1 - betas)
  if kind == "cosine":
    # Unclipped steps (all but the last) follow the closed form directly.
    np.testing.assert_allclose(abar[:-1], _cosine_abar(T)[:-1], rtol=1e-12)
  np.testing.assert_allclose(sched.betas, betas, rtol=1e-6)
  np.testing.assert_allclose(sched.alphas_cumprod, abar, rtol=1e-5, atol=1e-12)
  np.testing.assert_allclose(sched.sqrt_alphas_cumprod, np.sqrt(abar), rtol=1e-5, atol=1e-9)
  np.testing.assert_allclose(sched.sqrt_one_minus_alphas_cumprod, np.sqrt(1 - abar), rtol=1e-5)
  assert sched.timesteps == T and abar[-1] < 1e-4  # ends at (nearly) pure noise


def test_q_sample_and_targets():
  sched = diffusion.make_schedule("cosine", T)
  rng = np.random.default_rng(0)
  x0, eps = rng.uniform(-1, 1, (3, 4, 4, 2)), rng.normal(size=(3, 4, 4, 2))
  t = np.array([0, 500, 999])
  abar = np.cumprod(1 - _betas64("cosine", T))[t][:, None, None, None]
  np.testing.assert_allclose(diffusion.q_sample(sched, jnp.asarray(x0, jnp.float32), t,
                                                jnp.asarray(eps, jnp.float32)),
                             np.sqrt(abar) * x0 + np.sqrt(1 - abar) * eps, atol=1e-6)
  v = diffusion.target(sched, jnp.asarray(x0, jnp.float32), jnp.asarray(eps, jnp.float32), t,
                       "v")
  np.testing.assert_allclose(v, np.sqrt(abar) * eps - np.sqrt(1 - abar) * x0, atol=1e-6)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_ddim_step_with_true_noise_recovers_x0(prediction):
  sched = diffusion.make_schedule("cosine", T)
  rng = np.random.default_rng(1)
  x0 = jnp.asarray(rng.uniform(-1, 1, (4, 8, 8, 3)), jnp.float32)
  eps = jnp.asarray(rng.normal(size=(4, 8, 8, 3)), jnp.float32)
  t_B, s_B = jnp.full((4,), 700), jnp.full((4,), 200)
  x_t = diffusion.q_sample(sched, x0, t_B, eps)
  out = diffusion.target(sched, x0, eps, t_B, prediction)  # what a perfect model outputs
  x0_hat, eps_hat = diffusion.predict_x0_eps(sched, x_t, t_B, out, prediction)
  abar_t = sched.alphas_cumprod[700]
  # To the end: exactly x0.
  np.testing.assert_allclose(diffusion.ddim_step(x_t, x0_hat, eps_hat, abar_t, 1.0, 0.0, None),
                             x0, atol=1e-5)
  # To an intermediate step: the forward process with the same noise.
  np.testing.assert_allclose(
      diffusion.ddim_step(x_t, x0_hat, eps_hat, abar_t, sched.alphas_cumprod[200], 0.0, None),
      diffusion.q_sample(sched, x0, s_B, eps), atol=1e-5)


@pytest.mark.parametrize("method,prediction,steps", [("ddim", "eps", 7), ("ddim", "v", 1000),
                                                     ("ddpm", "v", 13)])
def test_sampler_with_an_oracle_returns_its_x0(method, prediction, steps):
  """A model that knows x0 (and so outputs the exact target at any x_t and original t)
  makes every sampler land on x0; a wrong timestep mapping would not."""
  sched = diffusion.make_schedule("linear", T)
  x0 = jnp.asarray(np.random.default_rng(2).uniform(-0.9, 0.9, (4, 4, 4, 1)), jnp.float32)

  def oracle(x, t_B, labels_B):
    a = sched.sqrt_alphas_cumprod[t_B][:, None, None, None]
    s = sched.sqrt_one_minus_alphas_cumprod[t_B][:, None, None, None]
    eps = (x - a * x0) / s
    return eps if prediction == "eps" else a * eps - s * x0

  run = jax.jit(lambda rng: diffusion.sample(
      oracle, sched, rng, x0.shape, jnp.zeros(4, jnp.int32), steps=steps, method=method,
      eta=0.5, null_class=1, prediction=prediction, clip_x0=True))
  np.testing.assert_allclose(run(jax.random.key(0)), x0, atol=2e-4)


def test_posterior_matches_bayes():
  """q(x_{t-1} | x_t, x0) from the product of q(x_{t-1} | x0) and q(x_t | x_{t-1})."""
  sched = diffusion.make_schedule("linear", T)
  betas = _betas64("linear", T)
  abar = np.cumprod(1 - betas)
  rng = np.random.default_rng(3)
  t = np.array([1, 10, 400, 999])
  x0, x_t = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
  mean, var = diffusion.posterior_mean_variance(sched, jnp.asarray(x0, jnp.float32),
                                                jnp.asarray(x_t, jnp.float32), t)
  b, ab_prev = betas[t][:, None], abar[t - 1][:, None]
  precision = 1 / (1 - ab_prev) + (1 - b) / b
  ref_mean = (np.sqrt(ab_prev) * x0 / (1 - ab_prev) + np.sqrt(1 - b) * x_t / b) / precision
  np.testing.assert_allclose(var, 1 / precision, rtol=1e-5)
  np.testing.assert_allclose(mean, ref_mean, rtol=1e-5, atol=1e-6)
  # At t = 0 the posterior is x0 itself.
  mean0, var0 = diffusion.posterior_mean_variance(sched, jnp.ones((1, 3)), jnp.zeros((1, 3)),
                                                  np.array([0]))
  np.testing.assert_allclose(mean0, 1.0, rtol=1e-6)
  np.testing.assert_allclose(var0, 0.0, atol=1e-12)


def test_respacing():
  sched = diffusion.make_schedule("cosine", T)
  ts, same = diffusion.respace(sched, T)
  np.testing.assert_array_equal(ts, np.arange(T))
  np.testing.assert_allclose(same.betas, sched.betas, rtol=1e-5)
  np.testing.assert_allclose(same.posterior_variance, sched.posterior_variance, rtol=1e-5)
  ts, short = diffusion.respace(sched, 10)
  assert ts[0] == 0 and ts[-1] == T - 1 and np.all(np.diff(ts) > 0)
  np.testing.assert_allclose(short.alphas_cumprod, sched.alphas_cumprod[ts], rtol=1e-5)
  np.testing.assert_array_equal(diffusion.spaced_timesteps(T, 1), [T - 1])
  for steps in (2, 3, 333, 999):
    assert len(set(diffusion.spaced_timesteps(T, steps))) == steps


def test_bad_settings_name_the_setting():
  sched = diffusion.make_schedule("linear", 100)
  ok = dict(steps=10, method="ddim", eta=0.0, guidance=1.0, prediction="eps")
  for bad in (dict(steps=0), dict(steps=101), dict(method="euler"), dict(eta=-0.1),
              dict(guidance=-1.0), dict(prediction="x0")):
    with pytest.raises(diffusion.SettingError) as e:
      diffusion.sample(lambda x, t, y: x, sched, jax.random.key(0), (2, 4, 4, 1),
                       jnp.zeros(2, jnp.int32), null_class=1, **{**ok, **bad})
    assert e.value.setting == next(iter(bad)) and "\n" not in str(e.value)
  with pytest.raises(diffusion.SettingError) as e:
    diffusion.make_schedule("quadratic", 100)
  assert e.value.setting == "schedule"
  with pytest.raises(diffusion.SettingError) as e:
    diffusion.make_schedule("linear", 0)
  assert e.value.setting == "timesteps"


# --- Exact denoisers for Gaussian data, and the exact law of what a sampler then draws ---

def _gaussian_eps(a, s, x, mu, sd):
  """E[eps | x_t] when x0 ~ N(mu, sd^2) and x_t = a x0 + s eps."""
  return s * (x - a * mu) / (a * a * sd * sd + s * s)


def _exact_denoiser(sched, prediction, classes):
  """The optimal model for per-pixel x0 ~ N(mu_c, sd_c^2) given class c; the null class
  (index len(classes)) gets the exact denoiser of the equal-weight mixture."""
  mus = jnp.asarray([c[0] for c in classes], jnp.float32)
  sds = jnp.asarray([c[1] for c in classes], jnp.float32)

  def fn(x, t_B, labels_B):
    a = sched.sqrt_alphas_cumprod[t_B][:, None, None, None]
    s = sched.sqrt_one_minus_alphas_cumprod[t_B][:, None, None, None]
    per_class = [_gaussian_eps(a, s, x, mu, sd) for mu, sd in classes]
    var = [a * a * sd * sd + s * s for _, sd in classes]
    logp = jnp.stack([-0.5 * (x - a * mu) ** 2 / v - 0.5 * jnp.log(v)
                      for (mu, _), v in zip(classes, var)])
    mixture = (jax.nn.softmax(logp, axis=0) * jnp.stack(per_class)).sum(0)
    lab = labels_B[:, None, None, None]
    eps = jnp.where(lab == len(classes), mixture,
                    _gaussian_eps(a, s, x, mus[jnp.minimum(lab, len(classes) - 1)],
                                  sds[jnp.minimum(lab, len(classes) - 1)]))
    x0 = (x - s * eps) / a
    return eps if prediction == "eps" else a * eps - s * x0
  return fn


def _exact_sample_law(kind, steps, method, mu, sd):
  """Mean and std of a sampler's output under the exact Gaussian denoiser, in float64:
  every step is affine in x plus Gaussian noise, so the law stays Gaussian."""
  ts = diffusion.spaced_timesteps(T, steps)
  ac = np.cumprod(1 - _betas64(kind, T))[ts]
  ac_prev = np.concatenate([[1.0], ac[:-1]])
  m, v = 0.0, 1.0
  for i in reversed(range(steps)):
    a, s, a_p = np.sqrt(ac[i]), np.sqrt(1 - ac[i]), np.sqrt(ac_prev[i])
    k = a * sd * sd / (a * a * sd * sd + s * s)  # x0_hat = mu + k (x - a mu)
    x0_A, x0_b = k, mu - k * a * mu               # x0_hat = x0_A x + x0_b
    if method == "ddim":                          # a_p x0_hat + s_p (x - a x0_hat) / s
      s_p = np.sqrt(1 - ac_prev[i])
      A, b, c = a_p * x0_A + s_p * (1 - a * x0_A) / s, a_p * x0_b - s_p * a * x0_b / s, 0.0
    else:
      beta = 1 - ac[i] / ac_prev[i]
      c1, c2 = beta * a_p / (1 - ac[i]), (1 - ac_prev[i]) * np.sqrt(1 - beta) / (1 - ac[i])
      A, b = c1 * x0_A + c2, c1 * x0_b
      c = np.sqrt(beta * (1 - ac_prev[i]) / (1 - ac[i])) if i > 0 else 0.0
    m, v = A * m + b, A * A * v + c * c
  return m, np.sqrt(v)


N_SAMPLES = (1024, 4, 4, 2)  # 32768 independent pixels


def _check_moments(x, mean, std, n):
  """Sample mean and std within 5 standard errors of a Gaussian law's."""
  x = np.asarray(x, np.float64).ravel()
  assert x.size == n
  assert abs(x.mean() - mean) < 5 * std / np.sqrt(n), (x.mean(), mean)
  assert abs(x.std() - std) < 5 * std / np.sqrt(2 * n), (x.std(), std)


@pytest.mark.parametrize("kind,method,prediction,steps", [
    ("cosine", "ddpm", "eps", 1000), ("linear", "ddim", "v", 1000),
    ("linear", "ddpm", "v", 50), ("cosine", "ddim", "eps", 50)])
def test_exact_denoiser_samples_the_data_distribution(kind, method, prediction, steps):
  mu, sd = 0.3, 0.5
  sched = diffusion.make_schedule(kind, T)
  fn = _exact_denoiser(sched, prediction, [(mu, sd)])
  run = jax.jit(lambda rng: diffusion.sample(
      fn, sched, rng, N_SAMPLES, jnp.zeros(N_SAMPLES[0], jnp.int32), steps=steps,
      method=method, null_class=1, prediction=prediction, clip_x0=False))
  x = run(jax.random.key(4))
  # The sampler draws exactly the law its steps imply ...
  law_mean, law_std = _exact_sample_law(kind, steps, method, mu, sd)
  _check_moments(x, law_mean, law_std, x.size)
  if steps == T:
    # ... which with every step is the data distribution, to within sampling error.
    _check_moments(x, mu, sd, x.size)
  else:
    # ... and with fewer steps a slightly narrower one (DDPM more so than DDIM).
    assert abs(law_mean - mu) < 1e-4 and 0.85 * sd < law_std < sd, (law_mean, law_std)


CLASSES = [(-0.5, 0.2), (0.6, 0.3)]


def test_guidance_one_samples_each_class_and_zero_the_mixture():
  steps = 100
  sched = diffusion.make_schedule("cosine", T)
  fn = _exact_denoiser(sched, "eps", CLASSES)
  labels = jnp.asarray(np.arange(N_SAMPLES[0]) % 2, jnp.int32)

  def run(guidance):
    return np.asarray(jax.jit(lambda rng: diffusion.sample(
        fn, sched, rng, N_SAMPLES, labels, steps=steps, method="ddim", guidance=guidance,
        null_class=2, prediction="eps", clip_x0=False))(jax.random.key(5)))

  x = run(1.0)
  n = x[0::2].size
  for c, (mu, sd) in enumerate(CLASSES):
    law_mean, law_std = _exact_sample_law("cosine", steps, "ddim", mu, sd)
    _check_moments(x[c::2], law_mean, law_std, n)
    assert abs(law_mean - mu) < 1e-4 and abs(law_std - sd) < 0.01
  # Guidance 0 ignores the labels and samples the equal-weight mixture.
  x = run(0.0).reshape(-1)
  cut = 0.05
  above = 0.5 * sum(0.5 * math.erfc((cut - mu) / (sd * math.sqrt(2))) for mu, sd in CLASSES)
  assert abs((x > cut).mean() - above) < 5 * 0.5 / np.sqrt(x.size), ((x > cut).mean(), above)
  mean = np.mean([mu for mu, _ in CLASSES])
  std = np.sqrt(np.mean([sd * sd + (mu - mean) ** 2 for mu, sd in CLASSES]))
  assert abs(x.mean() - mean) < 5 * std / np.sqrt(x.size), x.mean()
  assert abs(x.std() - std) < 0.01, (x.std(), std)


def _mixture_eps64(a, s, x, label):
  if label < len(CLASSES):
    mu, sd = CLASSES[label]
    return _gaussian_eps(a, s, x, mu, sd)
  var = np.stack([a * a * sd * sd + s * s for _, sd in CLASSES])
  logp = np.stack([-0.5 * (x - a * mu) ** 2 / v - 0.5 * np.log(v)
                   for (mu, _), v in zip(CLASSES, var)])
  w = np.exp(logp - logp.max(0))
  w = w / w.sum(0)
  return sum(w[c] * _gaussian_eps(a, s, x, mu, sd) for c, (mu, sd) in enumerate(CLASSES))


def test_guided_ddim_matches_float64_reference_in_one_batched_forward():
  guidance, steps = 3.0, 20
  sched = diffusion.make_schedule("linear", T)
  exact = _exact_denoiser(sched, "eps", CLASSES)
  batches = []

  def fn(x, t_B, labels_B):
    batches.append(x.shape[0])
    return exact(x, t_B, labels_B)

  labels = np.array([0, 1, 1, 0, 1, 0, 0, 1])
  x_T = np.random.default_rng(6).normal(size=(8, 2, 2, 1))
  out = jax.jit(lambda: diffusion.sample(
      fn, sched, jax.random.key(0), x_T.shape, jnp.asarray(labels), steps=steps,
      method="ddim", guidance=guidance, null_class=2, clip_x0=False,
      x_T=jnp.asarray(x_T, jnp.float32)))()
  assert batches and set(batches) == {16}  # cond and uncond halves in one forward

  ts = diffusion.spaced_timesteps(T, steps)
  ac = np.cumprod(1 - _betas64("linear", T))[ts]
  ac_prev = np.concatenate([[1.0], ac[:-1]])
  x = x_T.copy()
  for i in reversed(range(steps)):
    a, s = np.sqrt(ac[i]), np.sqrt(1 - ac[i])
    for b, label in enumerate(labels):
      cond, uncond = _mixture_eps64(a, s, x[b], label), _mixture_eps64(a, s, x[b], 2)
      eps = uncond + guidance * (cond - uncond)
      x[b] = np.sqrt(ac_prev[i]) * (x[b] - s * eps) / a + np.sqrt(1 - ac_prev[i]) * eps
  np.testing.assert_allclose(out, x, atol=1e-4)


def test_clip_x0_keeps_samples_in_range():
  sched = diffusion.make_schedule("cosine", 100)
  fn = _exact_denoiser(sched, "eps", [(0.0, 3.0)])  # data mostly outside [-1, 1]
  x = jax.jit(lambda rng: diffusion.sample(
      fn, sched, rng, (64, 2, 2, 1), jnp.zeros(64, jnp.int32), steps=10, method="ddpm",
      null_class=1, clip_x0=True))(jax.random.key(7))
  assert float(jnp.abs(x).max()) <= 1.0 and float(jnp.abs(x).max()) > 0.9


# --- Objectives ---

def test_diffusion_loss_and_denoising_sums_of_exact_denoiser():
  """For Gaussian data the optimal eps-MSE at step t is 1 - s_t^2 / V_t (float64 reference);
  the loss, averaged over t, is its mean."""
  mu, sd = 0.3, 0.5
  sched = diffusion.make_schedule("cosine", T)
  fn = _exact_denoiser(sched, "eps", [(mu, sd)])
  x0 = mu + sd * jax.random.normal(jax.random.key(8), (4096, 4, 4, 1))
  labels = jnp.zeros(4096, jnp.int32)
  ac = np.cumprod(1 - _betas64("cosine", T))
  optimal = 1 - (1 - ac) / (ac * sd * sd + 1 - ac)  # Var[eps | x_t]
  timesteps = (0, 250, 900)
  sums = jax.jit(lambda rng: objectives.denoising_sums(
      fn, x0, labels, rng, sched, prediction="eps", timesteps=timesteps))(jax.random.key(9))
  np.testing.assert_array_equal(sums["examples"], 4096)
  np.testing.assert_allclose(sums["mse"] / 4096, optimal[list(timesteps)], rtol=0.03)
  loss = jax.jit(lambda rng: objectives.diffusion_loss(
      fn, x0, labels, rng, sched, prediction="eps", label_dropout=0.5,
      null_class=1))(jax.random.key(10))
  # Dropped labels get the null class, whose exact denoiser is the same (one component).
  np.testing.assert_allclose(loss, optimal.mean(), rtol=0.05)
