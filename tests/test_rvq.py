"""Residual vector quantisation: codes pick codebook entries, more levels approximate
better, gradients pass straight through, and codebook usage is measured right."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling.families.base import eager_sharding
from scaling.models import rvq


def _mixture(n: int, seed: int) -> np.ndarray:
  """Rows from 16 Gaussian clusters in 8 dimensions, with spread inside each cluster."""
  rng = np.random.default_rng(seed)
  centres = np.random.default_rng(99).normal(0, 3, (16, 8))
  return (centres[rng.integers(16, size=n)] + rng.normal(0, 0.7, (n, 8))).astype(np.float32)


def _rvq(levels=4, size=16):
  with eager_sharding():
    return rvq.ResidualVQ(8, levels, size, rngs=nnx.Rngs(params=0))


def test_nearest_is_the_brute_force_argmin():
  x, book = _mixture(200, 0), _mixture(32, 1)
  brute = np.argmin(((x[:, None] - book[None]) ** 2).sum(-1), axis=1)
  np.testing.assert_array_equal(rvq.nearest(jnp.asarray(x), jnp.asarray(book)), brute)


def test_codes_pick_codebook_entries_and_gradients_pass_straight_through():
  q = _rvq()
  z = jnp.asarray(_mixture(64, 2))
  books = np.asarray(q.codebooks_QKD[...])
  out, codes, losses = q(z, 2)
  assert codes.shape == (64, 2)
  # The forward value is the sum of the chosen entries, one per level.
  np.testing.assert_allclose(out, books[0][codes[:, 0]] + books[1][codes[:, 1]], atol=1e-5)
  np.testing.assert_allclose(q.decode(codes), out, atol=1e-5)
  np.testing.assert_array_equal(q.encode(z, 2), codes)
  # One level: the codebook and commitment losses are both the mean squared distance.
  _, codes1, losses1 = q(z, 1)
  distance = np.mean(np.sum((np.asarray(z) - books[0][codes1[:, 0]]) ** 2, -1))
  np.testing.assert_allclose([losses1["codebook"], losses1["commitment"]], distance,
                             rtol=1e-5)
  # d(sum(out * w))/dz = w: the quantiser is the identity for gradients.
  w = jax.random.normal(jax.random.key(0), z.shape)
  grad = jax.grad(lambda z: jnp.sum(q(z, 3)[0] * w))(z)
  np.testing.assert_allclose(grad, w, atol=1e-6)


def test_the_reconstruction_error_falls_as_codebooks_are_added():
  q = _rvq(levels=4, size=16)
  rvq.kmeans_init(q, _mixture(2000, 3))
  held_out = jnp.asarray(_mixture(500, 4))
  errors = [float(jnp.mean(jnp.sum((q.decode(q.encode(held_out, n)) - held_out) ** 2, -1)))
            for n in range(1, 5)]
  assert np.all(np.diff(errors) < 0), errors
  # One level already finds the 16 clusters: what is left is the spread inside them.
  assert errors[0] < 0.2 * float(jnp.mean(jnp.sum((held_out - held_out.mean(0)) ** 2, -1)))
  usage = rvq.usage(q.encode(held_out), 16)
  assert usage["perplexity"][0] > 12 and usage["dead"][0] == 0


def test_usage_counts_perplexity_and_dead_codes():
  uniform = np.tile(np.arange(8), 10)[:, None]
  one = np.zeros((80, 1), np.int64)
  u = rvq.usage(np.concatenate([uniform, one], 1), 16)
  np.testing.assert_allclose(u["perplexity"], [8, 1], rtol=1e-12)
  np.testing.assert_allclose(u["dead"], [0.5, 15 / 16])
