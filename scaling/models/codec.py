"""A small convolutional audio codec (SoundStream, Zeghidour et al. 2021; EnCodec, Defossez
et al. 2022): strided 1-D convolutions encode a waveform into latent frames, residual
vector quantisation (`scaling.models.rvq`) turns each frame into Q integer codes, and
transposed convolutions decode the codes back into a waveform.

Encoder: per stride s, a convolution of 2s taps and stride s (to `channels`, then doubling
them) and residual units at the lower rate (one per entry of `dilations`), then a 3-tap
projection to the latent width. The decoder mirrors it. No layer runs at the full sample
rate but the first and the last, which keeps a step cheap on CPUs. A waveform
of T samples becomes T / prod(strides) frames: at 16 kHz with strides (4, 4, 4, 5), 50
frames a second, each Q codes of log2(K) bits.

Convolution weights are [taps, in, out]; tensor parallelism splits their output channels
(`mlp`) and FSDP leaves them whole: with the batch over (data, fsdp) and a kernel's input
channels over fsdp as well, XLA's partitioner gave gradients up to 6% off those of one
device on a (2, 2, 2) mesh, and these kernels are small. The latent projections and the
codebooks shard their latent width over FSDP (`embed`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.config import require
from scaling.models.layers import fan_in_init, param
from scaling.models.rvq import ResidualVQ

DIMENSIONS = ("NWC", "WIO", "NWC")


def check_shapes(cfg, sample_rate: int) -> None:
  """Raises a ConfigError naming the field unless every second is a whole number of
  frames (the strides' product divides the sample rate)."""
  hop = math.prod(cfg.strides)
  require(all(s >= 1 for s in cfg.strides), "model.strides",
          f"strides must be positive, got {tuple(cfg.strides)}")
  require(sample_rate % hop == 0, "model.strides",
          f"the strides {tuple(cfg.strides)} make a hop of {hop} samples, which does not "
          f"divide the sample rate {sample_rate}")


class Conv1d(nnx.Module):
  """[B, T, C_in] -> [B, T/stride, C_out] (or T * stride when `transpose`), 'same' padding."""

  def __init__(self, c_in: int, c_out: int, taps: int, *, stride: int = 1, dilation: int = 1,
               transpose: bool = False, axes=(None, None, "mlp"), rngs: nnx.Rngs):
    self.stride, self.dilation, self.transpose = stride, dilation, transpose
    self.w_KIO = param(rngs, fan_in_init(taps * c_in), (taps, c_in, c_out), axes)
    self.b_O = param(rngs, nnx.initializers.zeros, (c_out,), axes[2:])

  def __call__(self, x_BTC: jax.Array) -> jax.Array:
    w = self.w_KIO[...]
    if self.transpose:
      y = jax.lax.conv_transpose(x_BTC, w, (self.stride,), "SAME",
                                 dimension_numbers=DIMENSIONS)
    else:
      taps = (w.shape[0] - 1) * self.dilation + 1
      # Output length T / stride: pad (taps - stride) samples, the larger half on the left.
      pad = taps - self.stride
      y = jax.lax.conv_general_dilated(x_BTC, w, (self.stride,), [(pad - pad // 2, pad // 2)],
                                       rhs_dilation=(self.dilation,),
                                       dimension_numbers=DIMENSIONS)
    return y + self.b_O[...]


class ResidualUnit(nnx.Module):
  """x + conv1(elu(conv7_dilated(elu(x))))."""

  def __init__(self, channels: int, dilation: int, *, rngs: nnx.Rngs):
    self.wide = Conv1d(channels, channels, 7, dilation=dilation, rngs=rngs)
    self.point = Conv1d(channels, channels, 1, rngs=rngs)

  def __call__(self, x_BTC):
    return x_BTC + self.point(jax.nn.elu(self.wide(jax.nn.elu(x_BTC))))


class EncoderBlock(nnx.Module):
  """A strided convolution down by `stride`, then residual units at the lower rate."""

  def __init__(self, c_in: int, c_out: int, stride: int, dilations, *, rngs: nnx.Rngs):
    axes = (None, None, "mlp")
    self.down = Conv1d(c_in, c_out, 2 * stride, stride=stride, axes=axes, rngs=rngs)
    self.units = nnx.List([ResidualUnit(c_out, d, rngs=rngs) for d in dilations])

  def __call__(self, x_BTC):
    x_BTC = self.down(x_BTC)
    for unit in self.units:
      x_BTC = unit(x_BTC)
    return jax.nn.elu(x_BTC)


class DecoderBlock(nnx.Module):
  """Residual units, then a transposed convolution up by `stride`."""

  def __init__(self, c_in: int, c_out: int, stride: int, dilations, *, rngs: nnx.Rngs):
    self.units = nnx.List([ResidualUnit(c_in, d, rngs=rngs) for d in dilations])
    axes = (None, None, "mlp" if c_out > 1 else None)
    self.up = Conv1d(c_in, c_out, 2 * stride, stride=stride, transpose=True, axes=axes,
                     rngs=rngs)

  def __call__(self, x_BTC):
    for unit in self.units:
      x_BTC = unit(x_BTC)
    return self.up(jax.nn.elu(x_BTC))


class Codec(nnx.Module):
  """Waveform [B, T] <-> codes [B, T / hop, Q]; `__call__` runs both ways for training."""

  def __init__(self, cfg, *, rngs: nnx.Rngs):
    C, D, strides, dilations = cfg.channels, cfg.latent_dim, tuple(cfg.strides), cfg.dilations
    # The waveform's single channel, then `channels` doubled after each stride.
    widths = [1] + [C * 2 ** i for i in range(len(strides))]
    self.hop = math.prod(strides)
    self.encoder = nnx.List([EncoderBlock(widths[i], widths[i + 1], s, dilations, rngs=rngs)
                             for i, s in enumerate(strides)])
    self.encoder_out = Conv1d(widths[-1], D, 3, axes=(None, "mlp", "embed"), rngs=rngs)
    self.quantiser = ResidualVQ(D, cfg.n_codebooks, cfg.codebook_size, rngs=rngs)
    self.decoder_in = Conv1d(D, widths[-1], 7, axes=(None, "embed", "mlp"), rngs=rngs)
    self.decoder = nnx.List([DecoderBlock(widths[i + 1], widths[i], s, dilations, rngs=rngs)
                             for i, s in reversed(list(enumerate(strides)))])

  def latents(self, wave_BT: jax.Array) -> jax.Array:
    """[B, T / hop, D]: the encoder's output before quantisation."""
    x = wave_BT[..., None]
    for block in self.encoder:
      x = block(x)
    z_BFD = self.encoder_out(x)
    # Unit root-mean-square frames keep the latents on the codebooks' scale, which the
    # encoder could otherwise outrun (the codebook and commitment losses then blow up).
    return z_BFD * jax.lax.rsqrt(jnp.mean(z_BFD * z_BFD, -1, keepdims=True) + 1e-6)

  def synthesise(self, z_BFD: jax.Array) -> jax.Array:
    """[B, F * hop]: the decoder's waveform from (quantised) latents."""
    x = self.decoder_in(z_BFD)
    for block in self.decoder:
      x = block(x)
    return x[..., 0]

  def encode(self, wave_BT: jax.Array, n: int | None = None) -> jax.Array:
    """[B, T / hop, n]: the codes of each frame (all levels by default)."""
    z_BFD = self.latents(wave_BT)
    B, F, D = z_BFD.shape
    return self.quantiser.encode(z_BFD.reshape(B * F, D), n).reshape(B, F, -1)

  def decode(self, codes_BFn: jax.Array) -> jax.Array:
    """[B, F * hop]: the waveform of the codes' first n levels."""
    B, F, n = codes_BFn.shape
    z = self.quantiser.decode(codes_BFn.reshape(B * F, n)).reshape(B, F, -1)
    return self.synthesise(z)

  def __call__(self, wave_BT: jax.Array, levels_B: jax.Array | None = None):
    """(reconstruction [B, T], codes [B, T / hop, Q], the quantiser's losses); example b
    is decoded from its first `levels_B[b]` levels (all by default)."""
    z_BFD = self.latents(wave_BT)
    B, F, D = z_BFD.shape
    levels_N = None if levels_B is None else jnp.repeat(levels_B, F)
    quantised, codes, losses = self.quantiser(z_BFD.reshape(B * F, D), None, levels_N)
    return self.synthesise(quantised.reshape(B, F, D)), codes.reshape(B, F, -1), losses
