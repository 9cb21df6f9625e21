"""Residual vector quantisation (SoundStream, Zeghidour et al. 2021; EnCodec, Defossez et
al. 2022): Q codebooks of K vectors each; level q quantises what levels 0..q-1 left over,
so a latent vector becomes Q integer codes, and more levels give a finer approximation.

Training is by the straight-through estimator: the forward pass uses the quantised vector,
the backward pass the encoder's (its gradient passes through the rounding unchanged). Two
losses pull the two together (van den Oord et al. 2017): the codebook loss moves each
chosen entry towards the residual it stood for, the commitment loss keeps the encoder near
its codes. `kmeans_init` sets the codebooks from data, level by level, as EnCodec does on
its first batch.

Logical axes: `codebooks` and `codes` are the codebook dims (replicated by default);
`embed` the latent width, as everywhere else.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling.models.layers import param


def nearest(x_ND: jax.Array, codebook_KD: jax.Array) -> jax.Array:
  """[N] index of each row's nearest codebook entry (squared Euclidean distance)."""
  distance_NK = (jnp.sum(x_ND * x_ND, -1, keepdims=True) - 2 * x_ND @ codebook_KD.T
                 + jnp.sum(codebook_KD * codebook_KD, -1)[None, :])
  return jnp.argmin(distance_NK, axis=-1)


class ResidualVQ(nnx.Module):
  """`n_codebooks` codebooks of `codebook_size` vectors of width `dim`."""

  def __init__(self, dim: int, n_codebooks: int, codebook_size: int, *, rngs: nnx.Rngs):
    self.n_codebooks, self.codebook_size = n_codebooks, codebook_size
    self.codebooks_QKD = param(rngs, nnx.initializers.normal(1.0),
                               (n_codebooks, codebook_size, dim),
                               ("codebooks", "codes", "embed"))

  def encode(self, z_ND: jax.Array, n: int | None = None) -> jax.Array:
    """[N, n] codes of each row, level by level (all levels by default)."""
    return self._quantise(z_ND, n)[1]

  def decode(self, codes_Nn: jax.Array) -> jax.Array:
    """[N, D]: the sum of each row's chosen entries, one per level given."""
    books_QKD = self.codebooks_QKD[...]
    return sum(books_QKD[q][codes_Nn[:, q]] for q in range(codes_Nn.shape[1]))

  def __call__(self, z_ND: jax.Array, n: int | None = None,
               levels_N: jax.Array | None = None
               ) -> tuple[jax.Array, jax.Array, dict[str, jax.Array]]:
    """(straight-through quantised z [N, D], codes [N, n], losses): the codebook and
    commitment losses are means over rows of squared distances, summed over levels.

    `levels_N` (quantiser dropout, SoundStream): row i is quantised by its first
    `levels_N[i]` levels only, so that fewer codebooks still give a usable vector."""
    quantised_ND, codes_Nn, losses = self._quantise(z_ND, n, levels_N)
    return z_ND + jax.lax.stop_gradient(quantised_ND - z_ND), codes_Nn, losses

  def residuals(self, z_ND: jax.Array) -> jax.Array:
    """[Q, N, D]: what each level is given to quantise (z, then what is left of it)."""
    books_QKD = self.codebooks_QKD[...]
    out, residual_ND = [], z_ND
    for q in range(self.n_codebooks):
      out.append(residual_ND)
      residual_ND = residual_ND - books_QKD[q][nearest(residual_ND, books_QKD[q])]
    return jnp.stack(out)

  def _quantise(self, z_ND, n, levels_N=None):
    n = self.n_codebooks if n is None else n
    if not 1 <= n <= self.n_codebooks:
      raise ValueError(f"levels must be in [1, {self.n_codebooks}], got {n}")
    books_QKD = self.codebooks_QKD[...]
    residual_ND = z_ND
    quantised_ND = jnp.zeros_like(z_ND)
    codes, codebook, commitment = [], 0.0, 0.0
    for q in range(n):
      code_N = nearest(jax.lax.stop_gradient(residual_ND), books_QKD[q])
      chosen_ND = books_QKD[q][code_N]
      codebook += jnp.mean(jnp.sum((jax.lax.stop_gradient(residual_ND) - chosen_ND) ** 2, -1))
      commitment += jnp.mean(jnp.sum((residual_ND - jax.lax.stop_gradient(chosen_ND)) ** 2,
                                     -1))
      kept_N1 = 1.0 if levels_N is None else (q < levels_N)[:, None].astype(z_ND.dtype)
      quantised_ND = quantised_ND + chosen_ND * kept_N1
      residual_ND = residual_ND - jax.lax.stop_gradient(chosen_ND)
      codes.append(code_N)
    return quantised_ND, jnp.stack(codes, 1), {"codebook": codebook, "commitment": commitment}


def usage(codes_Nn: jax.Array, codebook_size: int) -> dict[str, np.ndarray]:
  """Per level: the perplexity of the codes' empirical distribution (K when every entry is
  used equally, 1 when one is) and the share of entries never used (dead codes)."""
  codes = np.asarray(codes_Nn)
  counts_nK = np.stack([np.bincount(codes[:, q], minlength=codebook_size)
                        for q in range(codes.shape[1])])
  p_nK = counts_nK / counts_nK.sum(1, keepdims=True)
  entropy = -np.sum(p_nK * np.log(np.where(p_nK > 0, p_nK, 1)), 1)  # 0 log 0 = 0
  return {"perplexity": np.exp(entropy), "dead": (counts_nK == 0).mean(1)}


def restart_dead_codes(codebooks_QKD: jax.Array, residuals_QND: jax.Array,
                       key: jax.Array) -> jax.Array:
  """The codebooks with every entry that no row of `residuals` chose replaced by one of
  those rows drawn at random without replacement (EnCodec's and Jukebox's dead-code restarts): an unused entry
  is moved to where the data are, and k-means-like training then spreads it out."""
  Q, K, _ = codebooks_QKD.shape
  N = residuals_QND.shape[1]
  chosen_QN = jax.vmap(nearest)(residuals_QND, codebooks_QKD)
  counts_QK = jax.vmap(lambda c: jnp.bincount(c, length=K))(chosen_QN)
  # Distinct rows per level (when there are enough): two entries restarted onto one row
  # would tie exactly, and which of them wins would then be up to float rounding.
  pick_QK = jax.vmap(lambda k: jax.random.choice(k, N, (K,), replace=N < K))(
      jax.random.split(key, Q))
  drawn_QKD = jnp.take_along_axis(residuals_QND, pick_QK[..., None], axis=1)
  return jnp.where((counts_QK == 0)[..., None], drawn_QKD, codebooks_QKD)


def kmeans_init(rvq: ResidualVQ, z_ND: np.ndarray, *, iterations: int = 10,
                seed: int = 0) -> None:
  """Sets each level's codebook to k-means centroids of what the levels before it leave of
  `z` (Lloyd's algorithm from a random sample of rows; an empty cluster takes a random
  row). Needs at least `codebook_size` rows."""
  z = np.asarray(z_ND, np.float64)
  K = rvq.codebook_size
  if len(z) < K:
    raise ValueError(f"k-means needs at least {K} rows, got {len(z)}")
  rng = np.random.default_rng(seed)
  books = np.array(rvq.codebooks_QKD[...], np.float64)
  residual = z
  for q in range(rvq.n_codebooks):
    centroids = residual[rng.choice(len(residual), K, replace=False)]
    for _ in range(iterations):
      assign = np.asarray(nearest(jnp.asarray(residual), jnp.asarray(centroids)))
      for k in range(K):
        members = residual[assign == k]
        centroids[k] = members.mean(0) if len(members) else residual[rng.integers(len(residual))]
    books[q] = centroids
    residual = residual - centroids[np.asarray(nearest(jnp.asarray(residual),
                                                       jnp.asarray(centroids)))]
  rvq.codebooks_QKD.value = jnp.asarray(books, jnp.float32)
