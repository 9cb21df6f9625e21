"""Diffusion transformer (DiT, Peebles & Xie 2023) with adaLN-Zero conditioning.

The image is cut into p x p patches, each embedded as one token; a fixed 2D sin-cos table
gives the patch positions (the shared attention runs without its rotary embedding; the
config has no `rope_base`). The conditioning vector is
a sinusoidal embedding of the diffusion timestep through an MLP plus a learned class
embedding; every block and the final layer read their shift / scale / gate from it. Those
projections start at zero, so each block starts as the identity and the model outputs 0.

Timesteps: `t_B` is the diffusion step index in [0, T) of the schedule the model is
trained with (`scaling.generate.diffusion`); samplers that skip steps pass the original
index. Class `num_classes` is the null class used for classifier-free guidance.

Logical axes: `patch` is the flattened patch (p*p*C) dimension; `cond` is the input
dimension of the conditioning projections of fixed size (timestep frequencies, class
rows), `cond_embed` that of the conditioning vector (width D, so muP treats the
projections from it as hidden weights). All are replicated unless the rules say otherwise.

Under muP (`model.parametrization="mup"`) the output projection is multiplied by
base_width / d_model and attention scores use 1 / head_dim (`scaling.optim` scales the
hidden weights' learning rates).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling.config import require
from scaling.mesh import constrain
from scaling.models.backend import dense
from scaling.models.layers import (Attention, Mlp, fan_in_init, param, readout_multiplier,
                                   run_stacked, score_scale, stacked)

TIME_FREQUENCIES = 256  # width of the sinusoidal timestep features, as in DiT
CLASS_INIT_STD = 0.02


def check_shapes(cfg, image_size: int) -> None:
  """Raises a ConfigError naming the field if the image cannot be patched as configured."""
  require(cfg.patch_size > 0, "model.patch_size", f"must be positive, got {cfg.patch_size}")
  require(image_size % cfg.patch_size == 0, "model.patch_size",
          f"image size {image_size} is not divisible by patch_size={cfg.patch_size}")
  require(cfg.d_model % 4 == 0, "model.d_model",
          f"d_model={cfg.d_model} must be divisible by 4 for the 2D sin-cos position table")


def timestep_features(t_B: jax.Array, dim: int = TIME_FREQUENCIES) -> jax.Array:
  """Sinusoidal features [cos, sin] of (possibly fractional) timesteps, periods up to 1e4."""
  half = dim // 2
  freq_F = jnp.exp(-np.log(10_000.0) * jnp.arange(half, dtype=jnp.float32) / half)
  angle_BF = t_B.astype(jnp.float32)[:, None] * freq_F
  return jnp.concatenate([jnp.cos(angle_BF), jnp.sin(angle_BF)], axis=-1)


def sincos_2d(grid: int, dim: int) -> np.ndarray:
  """Fixed [grid*grid, dim] position table: half the channels encode rows, half columns."""
  omega = 1.0 / 10_000.0 ** (np.arange(dim // 4, dtype=np.float64) / (dim // 4))
  rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
  parts = []
  for pos in (rows.reshape(-1), cols.reshape(-1)):
    angle = pos[:, None] * omega[None, :]
    parts += [np.sin(angle), np.cos(angle)]
  return np.concatenate(parts, axis=1).astype(np.float32)


def patchify(x_BHWC: jax.Array, p: int) -> jax.Array:
  """[B, H, W, C] -> [B, (H/p)(W/p), p*p*C], patches in raster order."""
  B, H, W, C = x_BHWC.shape
  x = x_BHWC.reshape(B, H // p, p, W // p, p, C).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(B, (H // p) * (W // p), p * p * C)


def unpatchify(x_BLP: jax.Array, p: int, size: int, channels: int) -> jax.Array:
  """Inverse of `patchify` for a square image of side `size`."""
  B, g = x_BLP.shape[0], size // p
  x = x_BLP.reshape(B, g, g, p, p, channels).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(B, size, size, channels)


def layer_norm(x_BLD: jax.Array, eps: float) -> jax.Array:
  """LayerNorm without a learned affine (adaLN supplies it); statistics in float32."""
  x32 = x_BLD.astype(jnp.float32)
  x32 = x32 - x32.mean(-1, keepdims=True)
  x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, -1, keepdims=True) + eps)
  return x32.astype(x_BLD.dtype)


def modulate(x_BLD: jax.Array, shift_BD: jax.Array, scale_BD: jax.Array) -> jax.Array:
  return x_BLD * (1 + scale_BD[:, None, :]) + shift_BD[:, None, :]


class AdaLN(nnx.Module):
  """Zero-initialised projection of silu(c) into `n` modulation vectors of width D."""

  def __init__(self, d_model: int, n: int, *, dtype: jnp.dtype, rngs: nnx.Rngs):
    self.dtype = dtype
    zeros = nnx.initializers.zeros
    self.w_DND = param(rngs, zeros, (d_model, n, d_model), ("cond_embed", None, "embed"))
    self.b_ND = param(rngs, zeros, (n, d_model), (None, "embed"))

  def __call__(self, c_BD: jax.Array) -> list[jax.Array]:
    mod_BND = jnp.einsum("bd,dne->bne", jax.nn.silu(c_BD), self.w_DND[...].astype(self.dtype))
    mod_BND = mod_BND + self.b_ND[...].astype(self.dtype)
    return [mod_BND[:, i] for i in range(mod_BND.shape[1])]


class DiTBlock(nnx.Module):
  """x + gate * attn(modulate(norm(x))), then the same for the MLP; non-causal attention."""

  def __init__(self, cfg, *, rngs: nnx.Rngs):
    dtype = jnp.dtype(cfg.dtype)
    self.eps = cfg.norm_eps
    # The gates start at zero, so the branches need no extra down-scaling at init. Patch
    # positions come from the fixed 2D table, so attention has no rotary embedding.
    self.attn = Attention(cfg.d_model, cfg.n_heads, cfg.n_kv_heads, rope_base=None,
                          dtype=dtype, implementation=cfg.attention, out_scale=1.0,
                          rngs=rngs, causal=False, score_scale=score_scale(cfg))
    self.mlp = Mlp(cfg.d_model, cfg.d_ff, cfg.mlp, dtype=dtype, out_scale=1.0, rngs=rngs)
    self.ada = AdaLN(cfg.d_model, 6, dtype=dtype, rngs=rngs)

  def rotary(self, x_BLD: jax.Array) -> jax.Array | None:
    """Rotary angles for the tokens' positions; none here (the position table is added to
    the tokens), a subclass may give some."""
    del x_BLD
    return None

  def __call__(self, x_BLD, c_BD, cache=None):
    shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c_BD)
    attn_BLD, _ = self.attn(modulate(layer_norm(x_BLD, self.eps), shift1, scale1),
                            positions_BL=None, rotary_2LK=self.rotary(x_BLD))
    x_BLD = x_BLD + gate1[:, None, :] * attn_BLD
    mlp_BLD = self.mlp(modulate(layer_norm(x_BLD, self.eps), shift2, scale2))
    return x_BLD + gate2[:, None, :] * mlp_BLD, cache


class DiT(nnx.Module):
  """Noise (or v) prediction for [B, H, W, C] images at timesteps `t_B` given `labels_B`."""

  def __init__(self, cfg, image_size: int, channels: int, num_classes: int, *,
               rngs: nnx.Rngs):
    check_shapes(cfg, image_size)
    p = cfg.patch_size
    P = p * p * channels
    self.image_size, self.channels, self.patch_size = image_size, channels, p
    self._init_stem(cfg, P, num_classes, rngs)
    self.blocks = stacked(lambda r: DiTBlock(cfg, rngs=r), cfg.n_layers, rngs)
    self._init_output(cfg, P, rngs)

  def _init_stem(self, cfg, P: int, num_classes: int, rngs: nnx.Rngs) -> None:
    """What every DiT shares before its blocks: the settings, the patch embedding of `P`
    values per token, and the conditioning."""
    D = cfg.d_model
    self.num_classes = num_classes
    self.dtype = jnp.dtype(cfg.dtype)
    self.n_layers, self.scan_layers, self.remat = cfg.n_layers, cfg.scan_layers, cfg.remat
    self.eps = cfg.norm_eps
    self.patch_PD = param(rngs, fan_in_init(P), (P, D), ("patch", "embed"))
    self.patch_b_D = param(rngs, nnx.initializers.zeros, (D,), ("embed",))
    self._init_conditioning(D, num_classes, rngs)

  def _init_conditioning(self, D: int, num_classes: int, rngs: nnx.Rngs) -> None:
    """The timestep MLP and the class table (`condition`)."""
    self.time_in_TD = param(rngs, fan_in_init(TIME_FREQUENCIES),
                            (TIME_FREQUENCIES, D), ("cond", "embed"))
    self.time_in_b_D = param(rngs, nnx.initializers.zeros, (D,), ("embed",))
    self.time_out_DD = param(rngs, fan_in_init(D), (D, D), ("cond_embed", "embed"))
    self.time_out_b_D = param(rngs, nnx.initializers.zeros, (D,), ("embed",))
    # One row per class plus the null class (row `num_classes`) for guidance.
    self.class_ND = param(rngs, nnx.initializers.normal(CLASS_INIT_STD),
                          (num_classes + 1, D), ("cond", "embed"))

  def _init_output(self, cfg, P: int, rngs: nnx.Rngs) -> None:
    """The final adaLN and the zero-initialised projection back to patches."""
    D = cfg.d_model
    self.final_ada = AdaLN(D, 2, dtype=self.dtype, rngs=rngs)
    self.out_DP = param(rngs, nnx.initializers.zeros, (D, P), ("embed", "patch"))
    self.out_b_P = param(rngs, nnx.initializers.zeros, (P,), ("patch",))
    self.readout = readout_multiplier(cfg)

  def condition(self, t_B: jax.Array, labels_B: jax.Array) -> jax.Array:
    """The conditioning vector c [B, D]: timestep MLP plus class embedding."""
    w = lambda v: v[...].astype(self.dtype)
    h_BD = timestep_features(t_B).astype(self.dtype) @ w(self.time_in_TD) + w(self.time_in_b_D)
    t_BD = jax.nn.silu(h_BD) @ w(self.time_out_DD) + w(self.time_out_b_D)
    # The table is tiny: gathering it whole keeps the lookup's output split by batch only.
    class_ND = constrain(w(self.class_ND), (None, None))
    c_BD = t_BD + jnp.take(class_ND, labels_B, axis=0)
    return constrain(c_BD, ("batch", "act_embed"))

  def __call__(self, x_BHWC: jax.Array, t_B: jax.Array, labels_B: jax.Array) -> jax.Array:
    """Float32 prediction of the same shape as `x_BHWC`."""
    return self._forward(x_BHWC, t_B, labels_B)[0]

  def activations(self, x_BHWC: jax.Array, t_B: jax.Array,
                  labels_B: jax.Array) -> dict[str, jax.Array]:
    """Mean absolute value of the patch embedding, every block's output and the output."""
    out, layers = self._forward(x_BHWC, t_B, labels_B, collect=True)
    return {"embedding": layers["embedding"],
            **{f"block_{i}": v for i, v in enumerate(layers["blocks"])},
            "output": jnp.abs(out).mean()}

  def tokens(self, x_BHWC: jax.Array) -> jax.Array:
    """The input cut into the tokens' patches [B, L, P]."""
    return patchify(x_BHWC, self.patch_size)

  def from_tokens(self, x_BLP: jax.Array) -> jax.Array:
    """The inverse of `tokens`."""
    return unpatchify(x_BLP, self.patch_size, self.image_size, self.channels)

  def positions(self, dim: int) -> np.ndarray:
    """[L, dim]: each patch's place in the image."""
    return sincos_2d(self.image_size // self.patch_size, dim)

  def _forward(self, x, t_B, labels_B, collect=False):
    w = lambda v: v[...].astype(self.dtype)
    x_BLP = self.tokens(x.astype(self.dtype))
    x_BLD = dense(x_BLP, w(self.patch_PD)) + w(self.patch_b_D)
    # A constant of the shapes, folded into the compiled program.
    x_BLD = x_BLD + jnp.asarray(self.positions(x_BLD.shape[-1]), self.dtype)
    x_BLD = constrain(x_BLD, ("batch", "length", "act_embed"))
    c_BD = self.condition(t_B, labels_B)
    embedded_BLD = x_BLD
    x_BLD, _, *outputs = run_stacked(self.blocks, x_BLD, c_BD, n=self.n_layers,
                                     scan=self.scan_layers, remat=self.remat, collect=collect)
    layers = None
    if collect:
      layers = {"embedding": jnp.abs(embedded_BLD).mean(),
                "blocks": jnp.abs(outputs[0]).mean(axis=tuple(range(1, x_BLD.ndim + 1)))}
    return self.from_tokens(self._output(x_BLD, c_BD)).astype(jnp.float32), layers

  def _output(self, x_BLD: jax.Array, c_BD: jax.Array) -> jax.Array:
    """Each token's patch [B, L, P]: final adaLN, then the output projection."""
    w = lambda v: v[...].astype(self.dtype)
    shift_BD, scale_BD = self.final_ada(c_BD)
    x_BLD = modulate(layer_norm(x_BLD, self.eps), shift_BD, scale_BD)
    return dense(x_BLD, w(self.out_DP)) * self.readout + w(self.out_b_P)
