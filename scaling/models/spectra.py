"""Spectra of waveforms [B, T]: STFT magnitudes, log-mel features, the codec's multi-scale
spectral loss and the scale-invariant SNR, batched.

Each function computes with the module of its input: JAX arrays give differentiable,
jittable results (training); NumPy arrays are computed on the host without compiling,
which is what scoring many clips of different lengths needs."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

def _xp(x):
  """numpy for host arrays, jax.numpy for everything else (traced or on a device)."""
  return np if isinstance(x, np.ndarray) else jnp


FLOOR = 1e-3  # added to magnitudes before a log: digital silence is not -infinity dB


def spectrogram(x_BT: jax.Array, window: int, hop: int | None = None) -> jax.Array:
  """[B, frames, window/2 + 1] magnitudes of a Hann-windowed STFT (hop: window / 4)."""
  xp = _xp(x_BT)
  hop = hop or window // 4
  frames = (x_BT.shape[-1] - window) // hop + 1
  index = np.arange(window)[None, :] + hop * np.arange(frames)[:, None]
  return xp.abs(xp.fft.rfft(x_BT[:, index] * np.hanning(window).astype(np.float32), axis=-1))


def spectral_loss(x_BT: jax.Array, y_BT: jax.Array,
                  windows: tuple[int, ...] = (64, 128, 256, 512, 1024)) -> jax.Array:
  """Multi-scale spectral distance (EnCodec's reconstruction loss in the frequency domain):
  per window size, the mean L1 distance of the STFT magnitudes plus that of their logs."""
  xp = _xp(x_BT)
  total = 0.0
  for window in windows:
    a, b = spectrogram(x_BT, window), spectrogram(y_BT, window)
    total += xp.mean(xp.abs(a - b)) + xp.mean(xp.abs(xp.log(a + FLOOR) - xp.log(b + FLOOR)))
  return total / len(windows)


def si_snr(reference_BT: jax.Array, estimate_BT: jax.Array) -> jax.Array:
  """[B] scale-invariant signal-to-noise ratio in dB (Le Roux et al. 2019): the estimate's
  projection on the zero-mean reference against what is left."""
  xp = _xp(reference_BT)
  r = reference_BT - reference_BT.mean(-1, keepdims=True)
  e = estimate_BT - estimate_BT.mean(-1, keepdims=True)
  target = xp.sum(e * r, -1, keepdims=True) / xp.sum(r * r, -1, keepdims=True) * r
  noise = e - target
  return 10 * xp.log10(xp.sum(target ** 2, -1) / xp.sum(noise ** 2, -1))


@functools.lru_cache(maxsize=8)
def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int) -> np.ndarray:
  """[n_fft/2 + 1, n_mels] triangular filters evenly spaced on the mel scale (HTK's
  2595 log10(1 + f/700)) from 0 Hz to the Nyquist frequency."""
  mel = lambda f: 2595 * np.log10(1 + f / 700)
  hz = lambda m: 700 * (10 ** (m / 2595) - 1)
  edges = hz(np.linspace(0, mel(sample_rate / 2), n_mels + 2))
  bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)[:, None]
  lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
  rising = (bins - lower) / (centre - lower)
  falling = (upper - bins) / (upper - centre)
  return np.maximum(0, np.minimum(rising, falling)).astype(np.float32)


def log_mel(x_BT: jax.Array, sample_rate: int, n_mels: int = 40,
            window_s: float = 0.025) -> jax.Array:
  """[B, frames, n_mels] log mel-band magnitudes (windows of 25 ms, hop a quarter of it)."""
  xp = _xp(x_BT)
  window = int(window_s * sample_rate)
  n_fft = 1 << (window - 1).bit_length()
  magnitude = spectrogram(xp.pad(x_BT, ((0, 0), (0, n_fft - window))), n_fft, hop=window // 4)
  return xp.log(magnitude @ mel_filterbank(n_fft, n_mels, sample_rate) + FLOOR)
