"""A diffusion transformer over clips: the DiT's conditioning and output, on space-time
tokens.

A clip [B, F, H, W, C] is cut into tubelets of `tubelet` frames x p x p pixels, each one
token; a fixed table gives each token its position: the DiT's 2D sin-cos table for the
patch's place in the frame plus a 1D sin-cos table for its frame. With `video_rope`,
attention also rotates queries and keys by frame, row and column (3-D axial RoPE, as
recent video DiTs do), so a score depends on two tokens' offset, and a digit's shape can
be drawn the same way wherever it is on the canvas. Attention is either
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

import functools

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
  head_dim = cfg.d_model // cfg.n_heads
  require(not cfg.video_rope or (head_dim >= 6 and head_dim % 2 == 0), "model.video_rope",
          f"3-D rotary positions need an even head dimension of at least 6 (a channel pair "
          f"per axis), got d_model/n_heads={head_dim}")
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


# Rotary base: the token grids are a few tokens wide, so the slowest rotation need only
# tell apart positions a few tokens apart (LMs use 10,000 for contexts of thousands).
ROPE_BASE = 100.0


@functools.lru_cache(maxsize=None)
def rotary_table(frames: int, grid: int, head_dim: int) -> np.ndarray:
  """[2, F' S', K/2]: cos and sin of each token's rotary angles, frame-major like the
  tokens (3-D axial RoPE): a third of the channel pairs turn with the frame, the rest are
  split between the rows and the columns."""
  pairs = head_dim // 2
  n_frame = pairs // 3
  n_row = (pairs - n_frame) // 2
  f, r, c = np.meshgrid(np.arange(frames), np.arange(grid), np.arange(grid), indexing="ij")
  angles = []
  for position, n in ((f, n_frame), (r, n_row), (c, pairs - n_frame - n_row)):
    freq_K = ROPE_BASE ** (-np.arange(n, dtype=np.float64) / max(n, 1))
    angles.append(position.reshape(-1, 1) * freq_K)
  angle_LK = np.concatenate(angles, axis=1)
  return np.stack([np.cos(angle_LK), np.sin(angle_LK)]).astype(np.float32)


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


def clip_rotary(x_BLD: jax.Array, frames: int, head_dim: int) -> np.ndarray:
  """[2, F'S', K/2]: the rotary table of a clip's tokens (square frames)."""
  return rotary_table(frames, int(round((x_BLD.shape[1] // frames) ** 0.5)), head_dim)


def per_sequence(rot_2LK: np.ndarray, batch: int, arrange, frames: int) -> jax.Array:
  """The rotary table of a batch of clips laid out as `arrange(x, frames)` lays out their
  tokens (within or across frames)."""
  rot_BLK = lambda r_LK: jnp.broadcast_to(jnp.asarray(r_LK), (batch,) + r_LK.shape)
  return jnp.stack([arrange(rot_BLK(r_LK), frames) for r_LK in rot_2LK])


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
    self.rope, self.head_dim = cfg.video_rope, cfg.d_model // cfg.n_heads

  def __call__(self, x_BLD, c_BD, cache=None):
    B, F = x_BLD.shape[0], self.frames
    space_rot = time_rot = None
    if self.rope:  # each sequence's tokens keep the angles of their places in the clip
      rot_2LK = clip_rotary(x_BLD, F, self.head_dim)
      space_rot = per_sequence(rot_2LK, B, within_frames, F)
      time_rot = per_sequence(rot_2LK, B, across_frames, F)
    (shift1, scale1, gate1, shift2, scale2, gate2,
     shift3, scale3, gate3) = self.ada(c_BD)
    h_BLD = modulate(layer_norm(x_BLD, self.eps), shift1, scale1)
    space_ND, _ = self.space(within_frames(h_BLD, F), positions_BL=None, rotary_2LK=space_rot)
    x_BLD = x_BLD + gate1[:, None, :] * space_ND.reshape(x_BLD.shape)
    h_BLD = modulate(layer_norm(x_BLD, self.eps), shift2, scale2)
    time_ND, _ = self.time(across_frames(h_BLD, F), positions_BL=None, rotary_2LK=time_rot)
    x_BLD = x_BLD + gate2[:, None, :] * from_across_frames(time_ND, B, F)
    x_BLD = constrain(x_BLD, ("batch", "length", "act_embed"))
    mlp_BLD = self.mlp(modulate(layer_norm(x_BLD, self.eps), shift3, scale3))
    return x_BLD + gate3[:, None, :] * mlp_BLD, cache


class JointBlock(DiTBlock):
  """The DiT block over all space-time tokens, with 3-D rotary positions when asked."""

  def __init__(self, cfg, frames: int, *, rngs: nnx.Rngs):
    super().__init__(cfg, rngs=rngs)
    self.frames, self.rope = frames, cfg.video_rope
    self.head_dim = cfg.d_model // cfg.n_heads

  def rotary(self, x_BLD: jax.Array) -> jax.Array | None:
    return jnp.asarray(clip_rotary(x_BLD, self.frames, self.head_dim)) if self.rope else None


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
      make = lambda r: JointBlock(cfg, token_frames, rngs=r)
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
