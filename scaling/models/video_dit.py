"""A diffusion transformer over clips: the DiT's conditioning and output, on space-time
tokens.

A clip [B, F, H, W, C] is cut into tubelets of `tubelet` frames x p x p pixels, each one
token; a fixed table gives each token its position: the DiT's 2D sin-cos table for the
patch's place in the frame plus a 1D sin-cos table for its frame. Attention is either
`joint`, over all F' x S' tokens of the clip, or `factorised` (as Latte and W.A.L.T. do):
each block attends within each frame, then across frames at each place, then runs its MLP,
each branch with its own adaLN shift, scale and gate. Factorised attention is joint
attention under a block mask (same frame, then same place) at a fraction of the cost:
(F' S')^2 scores become F' S'^2 + S' F'^2.

Logical axes: the frames ride with the batch when a block attends within frames
(["batch" x frames, places]) and the places when it attends across them, so the mesh
rules that shard the DiT shard this model unchanged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling.config import require
from scaling.mesh import constrain
from scaling.models.dit import DiT, AdaLN, DiTBlock, layer_norm, modulate, sincos_2d
from scaling.models.layers import Attention, Mlp, score_scale, stacked

ATTENTION = ("factorised", "joint")


def check_shapes(cfg, frames: int, image_size: int) -> None:
  """Raises a ConfigError naming the field if the clip cannot be cut into tubelets."""
  require(cfg.patch_size > 0 and image_size % cfg.patch_size == 0, "model.patch_size",
          f"image size {image_size} is not divisible by patch_size={cfg.patch_size}")
  require(cfg.tubelet > 0 and frames % cfg.tubelet == 0, "model.tubelet",
          f"{frames} frames are not divisible by tubelet={cfg.tubelet}")
  require(cfg.d_model % 4 == 0, "model.d_model",
          f"d_model={cfg.d_model} must be divisible by 4 for the 2D sin-cos position table")
  require(cfg.video_attention in ATTENTION, "model.video_attention",
          f"unknown {cfg.video_attention!r}; choose {' or '.join(ATTENTION)}")


def tubelets(x_BFHWC: jax.Array, t: int, p: int) -> jax.Array:
  """[B, F, H, W, C] -> [B, (F/t)(H/p)(W/p), t*p*p*C], frame-major, places in raster order."""
  B, F, H, W, C = x_BFHWC.shape
  x = x_BFHWC.reshape(B, F // t, t, H // p, p, W // p, p, C)
  x = x.transpose(0, 1, 3, 5, 2, 4, 6, 7)
  return x.reshape(B, (F // t) * (H // p) * (W // p), t * p * p * C)


def untubelets(x_BLP: jax.Array, t: int, p: int, frames: int, size: int,
               channels: int) -> jax.Array:
  """Inverse of `tubelets` for square frames of side `size`."""
  B, g = x_BLP.shape[0], size // p
  x = x_BLP.reshape(B, frames // t, g, g, t, p, p, channels).transpose(0, 1, 4, 2, 5, 3, 6, 7)
  return x.reshape(B, frames, size, size, channels)


def frame_table(frames: int, dim: int) -> np.ndarray:
  """[frames, dim] sin-cos features of each frame's index (the timestep features' form),
  computed on the host: a constant of the shapes."""
  half = dim // 2
  freq_F = np.exp(-np.log(10_000.0) * np.arange(half) / half)
  angle_TF = np.arange(frames)[:, None] * freq_F
  return np.concatenate([np.cos(angle_TF), np.sin(angle_TF)], axis=-1).astype(np.float32)


def within_frames(x_BLD: jax.Array, frames: int) -> jax.Array:
  """[B, F'S', D] -> [B F', S', D]: each frame's places as one sequence."""
  B, L, D = x_BLD.shape
  return x_BLD.reshape(B * frames, L // frames, D)


def across_frames(x_BLD: jax.Array, frames: int) -> jax.Array:
  """[B, F'S', D] -> [B S', F', D]: each place's frames as one sequence."""
  B, L, D = x_BLD.shape
  S = L // frames
  return x_BLD.reshape(B, frames, S, D).transpose(0, 2, 1, 3).reshape(B * S, frames, D)


def from_across_frames(x_ND: jax.Array, batch: int, frames: int) -> jax.Array:
  """Inverse of `across_frames`."""
  S = x_ND.shape[0] // batch
  return x_ND.reshape(batch, S, frames, -1).transpose(0, 2, 1, 3).reshape(batch, frames * S, -1)


class FactorisedBlock(nnx.Module):
  """x + gate * attn within frames, + gate * attn across frames, + gate * MLP; each
  branch's input modulated by adaLN from the conditioning vector."""

  def __init__(self, cfg, frames: int, *, rngs: nnx.Rngs):
    dtype = jnp.dtype(cfg.dtype)
    self.eps, self.frames = cfg.norm_eps, frames
    attention = lambda: Attention(cfg.d_model, cfg.n_heads, cfg.n_kv_heads, rope_base=None,
                                  dtype=dtype, implementation=cfg.attention, out_scale=1.0,
                                  rngs=rngs, causal=False, score_scale=score_scale(cfg))
    self.space = attention()
    self.time = attention()
    self.mlp = Mlp(cfg.d_model, cfg.d_ff, cfg.mlp, dtype=dtype, out_scale=1.0, rngs=rngs)
    self.ada = AdaLN(cfg.d_model, 9, dtype=dtype, rngs=rngs)

  def __call__(self, x_BLD, c_BD, cache=None):
    B, F = x_BLD.shape[0], self.frames
    (shift1, scale1, gate1, shift2, scale2, gate2,
     shift3, scale3, gate3) = self.ada(c_BD)
    h_BLD = modulate(layer_norm(x_BLD, self.eps), shift1, scale1)
    space_ND, _ = self.space(within_frames(h_BLD, F), positions_BL=None)
    x_BLD = x_BLD + gate1[:, None, :] * space_ND.reshape(x_BLD.shape)
    h_BLD = modulate(layer_norm(x_BLD, self.eps), shift2, scale2)
    time_ND, _ = self.time(across_frames(h_BLD, F), positions_BL=None)
    x_BLD = x_BLD + gate2[:, None, :] * from_across_frames(time_ND, B, F)
    x_BLD = constrain(x_BLD, ("batch", "length", "act_embed"))
    mlp_BLD = self.mlp(modulate(layer_norm(x_BLD, self.eps), shift3, scale3))
    return x_BLD + gate3[:, None, :] * mlp_BLD, cache


class VideoDiT(DiT):
  """Noise (or v) prediction for clips [B, F, H, W, C] at timesteps `t_B` given `labels_B`."""

  def __init__(self, cfg, frames: int, image_size: int, channels: int, num_classes: int, *,
               rngs: nnx.Rngs):
    check_shapes(cfg, frames, image_size)
    p, t = cfg.patch_size, cfg.tubelet
    P = t * p * p * channels
    self.frames, self.image_size, self.channels = frames, image_size, channels
    self.patch_size, self.tubelet = p, t
    self._init_stem(cfg, P, num_classes, rngs)
    token_frames = frames // t
    if cfg.video_attention == "factorised":
      make = lambda r: FactorisedBlock(cfg, token_frames, rngs=r)
    else:
      make = lambda r: DiTBlock(cfg, rngs=r)
    self.blocks = stacked(make, cfg.n_layers, rngs)
    self._init_output(cfg, P, rngs)

  def tokens(self, x_BFHWC: jax.Array) -> jax.Array:
    return tubelets(x_BFHWC, self.tubelet, self.patch_size)

  def from_tokens(self, x_BLP: jax.Array) -> jax.Array:
    return untubelets(x_BLP, self.tubelet, self.patch_size, self.frames, self.image_size,
                      self.channels)

  def positions(self, dim: int) -> np.ndarray:
    """[F'S', dim]: each token's place in its frame plus its frame, frame-major."""
    g, f = self.image_size // self.patch_size, self.frames // self.tubelet
    return (frame_table(f, dim)[:, None, :] + sincos_2d(g, dim)[None, :, :]).reshape(-1, dim)
