"""A small recogniser of spoken words: log-mel features of one word, two strided 1-D
convolutions over time, mean and max pooling, and a linear readout over the words.

Features are left-aligned in a window of `WINDOW_S` seconds and their mean over time is
taken off each band (cepstral mean normalisation), so the loudness of a clip, which a
codec changes, does not change them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.models import spectra

WINDOW_S = 1.0


def features(wave_BT: jax.Array, sample_rate: int) -> jax.Array:
  """[B, frames, 40] mean-normalised log-mel features of words padded to `WINDOW_S`."""
  feats_BFM = spectra.log_mel(wave_BT, sample_rate)
  return feats_BFM - feats_BFM.mean(1, keepdims=True)


class Recogniser(nnx.Module):
  """[B, frames, bands] features -> [B, n_words] logits."""

  def __init__(self, n_bands: int, n_words: int, width: int = 64, *, rngs: nnx.Rngs):
    self.conv1 = nnx.Conv(n_bands, width, (5,), strides=(2,), rngs=rngs)
    self.conv2 = nnx.Conv(width, width, (5,), strides=(2,), rngs=rngs)
    self.readout = nnx.Linear(2 * width, n_words, rngs=rngs)

  def __call__(self, feats_BFM: jax.Array) -> jax.Array:
    h_BFC = jax.nn.gelu(self.conv2(jax.nn.gelu(self.conv1(feats_BFM))))
    return self.readout(jnp.concatenate([h_BFC.mean(1), h_BFC.max(1)], -1))
