"""Next-token sampling: exact distributions (chi-square on 100k draws), edge cases, jit."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from scaling.generate import sampling

SamplingConfig = sampling.SamplingConfig

N_DRAWS = 100_000
P_ACCEPT = 1e-4   # a correct sampler fails a single goodness-of-fit test this rarely
P_REJECT = 1e-12  # a wrong distribution must be rejected at least this strongly

# Logits in descending order, built from the T=1 probabilities
#   0.14 0.125 0.11 0.10 0.09 0.085 0.08 0.07 0.065 | 0.06 | 0.02 0.015 0.01 | ...
# so that every filter's boundary token is likely enough for the test to have power:
# - top_p=0.9 at T=1: the mass before rank 10 is 0.865 and rank 10 (p=0.06) crosses 0.9;
# - top_k=10 at T=1.3: rank 10 has ~7% of the renormalised mass;
# - T=0.8, top_k=20, top_p=0.75: the nucleus is 7 tokens, the 7th with ~8%; applying
#   the temperature after top-p instead would keep 8;
# - min_p=0.05 at T=1: ranks 14 and 15 have 0.055 and 0.045 times the top probability.
# Then a geometric tail, with one exact tie, to reach 50 tokens.
_SORTED_LOGITS = np.array([
    3.0, 2.887, 2.759, 2.664, 2.558, 2.501, 2.44, 2.307, 2.233, 2.153,
    1.054, 0.766, 0.361, 0.1, -0.101, -1.063, -1.225, -1.388, -1.55, -1.713,
    -1.875, -2.038, -2.2, -2.363, -2.525, -2.688, -2.85, -3.013, -3.176, -3.338,
    -3.501, -3.663, -3.826, -3.988, -4.151, -4.313, -4.476, -4.638, -4.801, -4.963,
    -5.126, -5.288, -5.288, -5.613, -5.776, -5.938, -6.101, -6.263, -6.426, -6.588,
])
V = len(_SORTED_LOGITS)
# Scattered over the vocabulary, so that token id and rank differ and a sampler that
# forgets to map sorted positions back to token ids fails.
LOGITS_V = _SORTED_LOGITS[np.random.default_rng(0).permutation(V)].astype(np.float32)


def reference_probs(logits_V, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, *,
                    k_shift=0, p_shift=0, min_p_shift=0, temperature_last=False):
  """The distribution to sample from, in float64 with explicit loops (not the library).

  The *_shift arguments keep that many more (or fewer) tokens at one filter's boundary,
  and temperature_last filters the raw logits and applies the temperature afterwards:
  the plausible bugs the goodness-of-fit test must be able to tell apart.
  """
  logits = np.asarray(logits_V, np.float64)
  n = len(logits)
  if temperature == 0:
    probs = np.zeros(n)
    probs[int(np.argmax(logits))] = 1.0
    return probs
  z = logits if temperature_last else logits / temperature
  # Rank order: descending logit, ties by ascending token id.
  order = sorted(range(n), key=lambda i: (-z[i], i))
  kept = list(order)

  def normalised(ids):
    weights = {i: np.exp(z[i] - z[ids[0]]) for i in ids}
    total = sum(weights.values())
    return {i: w / total for i, w in weights.items()}

  if 0 < top_k < n:
    kept = kept[:top_k + k_shift]
  if top_p < 1.0:
    probs = normalised(kept)
    count, mass_before = 0, 0.0
    for i in kept:
      if mass_before >= top_p:
        break
      count += 1
      mass_before += probs[i]
    kept = kept[:count + p_shift]
  if min_p > 0.0:
    probs = normalised(kept)
    top = max(probs.values())
    count = sum(1 for i in kept if probs[i] >= min_p * top)
    kept = kept[:count + min_p_shift]
  if temperature_last:
    z = logits / temperature
  out = np.zeros(n)
  for i, p in normalised(kept).items():
    out[i] = p
  return out


def gof_pvalue(counts_V, probs_V):
  """Chi-square goodness-of-fit p-value of the counts against the distribution.

  0 when any draw landed on a zero-probability token. Tokens expected fewer than 5 times
  are pooled (least likely first) so that the chi-square approximation holds.
  """
  counts_V, probs_V = np.asarray(counts_V), np.asarray(probs_V, np.float64)
  if counts_V[probs_V == 0].sum() > 0:
    return 0.0
  total = counts_V.sum()
  ids = [i for i in np.argsort(probs_V) if probs_V[i] > 0]
  expected = probs_V * total
  pooled_obs, pooled_exp = 0, 0.0
  while ids and pooled_exp < 5:
    i = ids.pop(0)
    pooled_obs += counts_V[i]
    pooled_exp += expected[i]
  obs = [counts_V[i] for i in ids] + ([pooled_obs] if pooled_exp > 0 else [])
  exp = np.array([expected[i] for i in ids] + ([pooled_exp] if pooled_exp > 0 else []))
  if len(obs) < 2:
    return 1.0 if obs[0] == total else 0.0
  exp *= total / exp.sum()  # exact sums, as scipy requires
  return stats.chisquare(obs, exp).pvalue


# Jitted once per config and shape: faster than op-by-op dispatch, and what a decode loop does.
_sample = jax.jit(sampling.sample, static_argnums=2)
_process = jax.jit(sampling.process_logits, static_argnums=1)
_probs = jax.jit(sampling.probabilities, static_argnums=1)


def _draw(cfg, seed, logits_V=LOGITS_V, n=N_DRAWS):
  """Token counts of n independent draws: one `sample` call on n copies of the logits."""
  logits_NV = jnp.broadcast_to(jnp.asarray(logits_V), (n, len(logits_V)))
  tokens_N = np.asarray(_sample(jax.random.key(seed), logits_NV, cfg))
  assert tokens_N.shape == (n,) and tokens_N.dtype == np.int32
  return np.bincount(tokens_N, minlength=len(logits_V))


# Each setting, with the wrong distributions its samples must reject.
_SETTINGS = {
    "T=1": (dict(temperature=1.0), [dict(temperature=0.9), dict(temperature=1.1)]),
    "T=0.7": (dict(temperature=0.7), [dict(temperature=1.0), dict(temperature=0.75)]),
    "T=1.3,k=10": (dict(temperature=1.3, top_k=10), [dict(k_shift=-1), dict(k_shift=1)]),
    "T=1,p=0.9": (dict(top_p=0.9), [dict(p_shift=-1), dict(p_shift=1)]),
    "T=0.8,k=20,p=0.75": (dict(temperature=0.8, top_k=20, top_p=0.75),
                          [dict(p_shift=-1), dict(p_shift=1), dict(temperature_last=True)]),
    "T=1,min_p=0.05": (dict(min_p=0.05), [dict(min_p_shift=-1), dict(min_p_shift=1)]),
}


@pytest.mark.parametrize("name", list(_SETTINGS))
def test_samples_follow_the_exact_distribution(name):
  settings, wrong_variants = _SETTINGS[name]
  cfg = SamplingConfig(**settings)
  expected_V = reference_probs(LOGITS_V, **settings)
  # `probabilities` is the distribution itself, and `sample` must draw from it.
  np.testing.assert_allclose(np.asarray(_probs(LOGITS_V[None], cfg))[0],
                             expected_V, rtol=1e-5, atol=1e-7)
  counts_V = _draw(cfg, seed=list(_SETTINGS).index(name))
  assert counts_V[expected_V == 0].sum() == 0, "sampled a filtered-out token"
  assert gof_pvalue(counts_V, expected_V) > P_ACCEPT

  for wrong in wrong_variants:
    kwargs = {**settings, **wrong}
    wrong_V = reference_probs(LOGITS_V, **kwargs)
    assert np.abs(wrong_V - expected_V).sum() > 0.01, kwargs  # really a different one
    assert gof_pvalue(counts_V, wrong_V) < P_REJECT, kwargs


def test_filters_keep_the_documented_token_counts():
  """The logits above put each boundary where the settings' comments say."""
  kept = lambda **kw: int((reference_probs(LOGITS_V, **kw) > 0).sum())
  assert kept(temperature=1.3, top_k=10) == 10
  assert kept(top_p=0.9) == 10
  assert kept(temperature=0.8, top_k=20, top_p=0.75) == 7
  assert kept(temperature=0.8, top_k=20, top_p=0.75, temperature_last=True) == 8
  assert kept(min_p=0.05) == 14
  cfg = SamplingConfig(temperature=0.8, top_k=20, top_p=0.75)
  processed_V = np.asarray(_process(LOGITS_V[None], cfg))[0]
  assert processed_V.dtype == np.float32
  assert np.isfinite(processed_V).sum() == 7
  np.testing.assert_allclose(processed_V[np.isfinite(processed_V)],
                             (LOGITS_V / np.float32(0.8))[np.isfinite(processed_V)])


@pytest.mark.parametrize("settings", [
    dict(temperature=0.5, top_k=3), dict(top_p=0.3), dict(top_p=0.6, min_p=0.2),
    dict(temperature=2.0, top_k=30, top_p=0.95, min_p=0.01), dict(top_k=1),
])
def test_batched_rows_match_the_reference(settings):
  logits_BV = np.random.default_rng(1).normal(0, 2, (16, 64)).astype(np.float32)
  cfg = SamplingConfig(**settings)
  probs_BV = np.asarray(jax.jit(sampling.probabilities, static_argnums=1)(logits_BV, cfg))
  for row_V, probs_V in zip(logits_BV, probs_BV):
    expected_V = reference_probs(row_V, **settings)
    np.testing.assert_array_equal(probs_V > 0, expected_V > 0)
    np.testing.assert_allclose(probs_V, expected_V, rtol=1e-5, atol=1e-7)


def test_top_k_at_least_vocab_is_no_filter():
  logits_BV = np.random.default_rng(2).normal(size=(4, V)).astype(np.float32)
  off = np.asarray(_process(logits_BV, SamplingConfig(temperature=0.9)))
  assert np.isfinite(off).all()
  for k in (V, V + 7):
    on = np.asarray(_process(logits_BV, SamplingConfig(temperature=0.9, top_k=k)))
    np.testing.assert_array_equal(on, off)
  assert np.isfinite(_process(logits_BV, SamplingConfig(top_k=V - 1))).sum() == 4 * (V - 1)


def test_top_p_one_keeps_everything():
  # One dominant token: in float32 the cumulative sum reaches 1.0 after it, so a cutoff
  # computed at p = 1 could drop the tail; p = 1 must keep every token regardless.
  logits_BV = np.zeros((2, V), np.float32)
  logits_BV[:, 3] = 30.0
  processed = np.asarray(_process(logits_BV, SamplingConfig(top_p=1.0)))
  np.testing.assert_array_equal(processed, logits_BV)
  # Whereas any p < 1 keeps only the dominant token here.
  processed = np.asarray(_process(logits_BV, SamplingConfig(top_p=0.999)))
  assert (np.isfinite(processed).sum(axis=-1) == 1).all()


def test_top_p_keeps_the_token_that_crosses_p():
  logits_V = np.log(np.array([0.1, 0.4, 0.3, 0.2], np.float32))
  def kept(p):
    processed = np.asarray(_process(logits_V[None], SamplingConfig(top_p=p)))[0]
    return set(np.flatnonzero(np.isfinite(processed)).tolist())
  assert kept(1e-6) == {1}   # tiny p: exactly the argmax
  assert kept(0.39) == {1}       # 0.4 crosses 0.39
  assert kept(0.41) == {1, 2}    # 0.4 falls short of 0.41, and 0.3 crosses it
  assert kept(0.71) == {1, 2, 3}
  assert kept(0.91) == {0, 1, 2, 3}


def test_tiny_top_p_keeps_exactly_the_argmax():
  logits_BV = np.random.default_rng(3).normal(size=(32, V)).astype(np.float32)
  probs_BV = np.asarray(_probs(logits_BV, SamplingConfig(top_p=1e-6)))
  np.testing.assert_array_equal(probs_BV, np.eye(V, dtype=np.float32)[logits_BV.argmax(-1)])


def test_ties_are_broken_by_lower_token_id():
  logits_V = np.array([0.0, 2.0, 1.0, 2.0, 2.0, 1.0], np.float32)
  def kept(**settings):
    processed = _process(logits_V[None], SamplingConfig(**settings))
    return np.flatnonzero(np.isfinite(np.asarray(processed)[0])).tolist()
  assert kept(top_k=2) == [1, 3]        # exactly k, although three tokens tie for 2nd
  assert kept(top_k=4) == [1, 2, 3, 4]
  assert kept(top_p=1e-6) == [1]
  assert kept(top_p=0.3) == [1, 3]      # each tied token holds ~0.29 of the mass
  assert kept(temperature=0) == [1]
  assert int(sampling.sample(None, logits_V[None], SamplingConfig(temperature=0))[0]) == 1


def test_temperature_zero_is_greedy_and_near_zero_is_almost_greedy():
  logits_BV = np.random.default_rng(4).normal(size=(8, V)).astype(np.float32)
  argmax_B = logits_BV.argmax(-1)
  for cfg in (SamplingConfig(temperature=0), SamplingConfig(temperature=0, top_k=3, top_p=0.1)):
    for seed in range(3):
      tokens_B = np.asarray(_sample(jax.random.key(seed), logits_BV, cfg))
      np.testing.assert_array_equal(tokens_B, argmax_B)
      assert tokens_B.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(_probs(logits_BV, cfg)),
                                  np.eye(V, dtype=np.float32)[argmax_B])
  cfg = SamplingConfig(temperature=1e-6)
  probs_BV = np.asarray(_probs(logits_BV, cfg))
  assert (probs_BV[np.arange(8), argmax_B] > 1 - 1e-6).all()
  counts_V = _draw(cfg, seed=7, logits_V=logits_BV[0], n=10_000)
  assert counts_V[argmax_B[0]] == 10_000


@pytest.mark.parametrize("field,value", [
    ("temperature", -0.1), ("temperature", float("nan")), ("top_k", -1), ("top_k", 2.5),
    ("top_p", 0.0), ("top_p", -0.5), ("top_p", 1.01), ("min_p", -0.1), ("min_p", 1.0),
])
def test_invalid_configs_are_refused(field, value):
  cfg = SamplingConfig(**{field: value})
  with pytest.raises(ValueError, match=field):
    cfg.validate()
  with pytest.raises(ValueError, match=field):
    sampling.sample(jax.random.key(0), LOGITS_V[None], cfg)


def test_valid_edge_configs_are_accepted():
  for cfg in (SamplingConfig(), SamplingConfig(temperature=0), SamplingConfig(top_p=1.0),
              SamplingConfig(top_k=0, min_p=0.0), SamplingConfig(top_p=1e-9, min_p=0.999)):
    cfg.validate()


def test_sample_is_jittable_inside_a_decode_loop():
  cfg = SamplingConfig(temperature=0.8, top_k=5, top_p=0.9, min_p=0.01)
  assert hash(cfg) == hash(dataclasses.replace(cfg))
  logits_BV = jnp.asarray(np.random.default_rng(5).normal(size=(4, V)), jnp.bfloat16)

  @jax.jit
  def decode(key):
    def body(i, carry):
      key, tokens_TB = carry
      key, sub = jax.random.split(key)
      return key, tokens_TB.at[i].set(sampling.sample(sub, logits_BV, cfg))
    return jax.lax.fori_loop(0, 6, body, (key, jnp.zeros((6, 4), jnp.int32)))[1]

  key = jax.random.key(0)
  tokens_TB = np.asarray(decode(key))
  # Traced inside the loop, it draws what the standalone jitted call draws.
  np.testing.assert_array_equal(tokens_TB[0], _sample(jax.random.split(key)[1], logits_BV, cfg))
  allowed_BV = np.asarray(_probs(logits_BV, cfg)) > 0
  assert allowed_BV.sum(-1).max() <= 5
  for tokens_B in tokens_TB:
    assert allowed_BV[np.arange(4), tokens_B].all()
