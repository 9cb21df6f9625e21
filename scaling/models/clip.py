"""A contrastive image-text model: an image tower and a text tower embedding into one space.

Image tower (a small ViT): p x p patches embedded as tokens with the DiT's fixed 2D sin-cos
positions, pre-norm blocks attending without a mask, a final norm, the mean over patches.
Text tower (the LM's): byte tokens, causal blocks with rotary positions, a final norm, the
state at </s>. Each tower ends in a linear projection to `embed_dim`; embeddings are
L2-normalised, and the pair score is `exp(log_scale) * cos + bias` (SigLIP's learned
temperature and bias, initialised at 10 and -10 as in Zhai et al. 2023).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from scaling.mesh import constrain
from scaling.models.backend import dense
from scaling.models.dit import patchify, sincos_2d
from scaling.models.layers import Block, RMSNorm, fan_in_init, param, run_stacked, stacked


def _tower_cfg(cfg, rope_base) -> ml_collections.ConfigDict:
  """The blocks' settings: the model section's, with the tower's position encoding."""
  tower = ml_collections.ConfigDict(cfg.to_dict())
  tower.rope_base = rope_base
  return tower


def l2_normalize(x_BE: jax.Array) -> jax.Array:
  x32 = x_BE.astype(jnp.float32)
  return x32 * jax.lax.rsqrt(jnp.sum(x32 * x32, -1, keepdims=True) + 1e-12)


class ImageTower(nnx.Module):
  def __init__(self, cfg, image_size: int, channels: int, *, rngs: nnx.Rngs):
    D, p = cfg.d_model, cfg.patch_size
    P = p * p * channels
    self.patch_size, self.grid, self.dtype = p, image_size // p, jnp.dtype(cfg.dtype)
    self.n_layers, self.scan_layers, self.remat = cfg.n_layers, cfg.scan_layers, cfg.remat
    self.patch_PD = param(rngs, fan_in_init(P), (P, D), ("patch", "embed"))
    tower = _tower_cfg(cfg, None)
    self.blocks = stacked(lambda r: Block(tower, rngs=r, causal=False), cfg.n_layers, rngs)
    self.final_norm = RMSNorm(D, cfg.norm_eps, rngs=rngs)
    self.proj_DE = param(rngs, fan_in_init(D), (D, cfg.embed_dim), ("embed", None))

  def __call__(self, images_BHWC: jax.Array) -> jax.Array:
    w = lambda p: p[...].astype(self.dtype)
    x_BLP = patchify(images_BHWC.astype(self.dtype), self.patch_size)
    positions_LD = sincos_2d(self.grid, self.patch_PD.shape[-1])
    x_BLD = dense(x_BLP, w(self.patch_PD)) + jnp.asarray(positions_LD, self.dtype)
    x_BLD = constrain(x_BLD, ("batch", "length", "act_embed"))
    positions_BL = jnp.broadcast_to(jnp.arange(x_BLD.shape[1]), x_BLD.shape[:2])
    x_BLD, _ = run_stacked(self.blocks, x_BLD, positions_BL, None, n=self.n_layers,
                           scan=self.scan_layers, remat=self.remat)
    pooled_BD = self.final_norm(x_BLD).mean(axis=1)
    return l2_normalize(pooled_BD @ w(self.proj_DE))


class TextTower(nnx.Module):
  def __init__(self, cfg, vocab_size: int, *, rngs: nnx.Rngs):
    D = cfg.d_model
    self.dtype = jnp.dtype(cfg.dtype)
    self.n_layers, self.scan_layers, self.remat = cfg.n_layers, cfg.scan_layers, cfg.remat
    self.embed_VD = param(rngs, nnx.initializers.normal(D ** -0.5), (vocab_size, D),
                          ("vocab", "embed"))
    tower = _tower_cfg(cfg, cfg.rope_base)
    self.blocks = stacked(lambda r: Block(tower, rngs=r), cfg.n_layers, rngs)
    self.final_norm = RMSNorm(D, cfg.norm_eps, rngs=rngs)
    self.proj_DE = param(rngs, fan_in_init(D), (D, cfg.embed_dim), ("embed", None))

  def __call__(self, tokens_BT: jax.Array) -> jax.Array:
    """Embeddings of right-padded captions, read at each caption's last token (</s>)."""
    x_BTD = jnp.take(self.embed_VD[...], tokens_BT, axis=0).astype(self.dtype)
    x_BTD = constrain(x_BTD, ("batch", "length", "act_embed"))
    positions_BT = jnp.broadcast_to(jnp.arange(tokens_BT.shape[1]), tokens_BT.shape)
    x_BTD, _ = run_stacked(self.blocks, x_BTD, positions_BT, None, n=self.n_layers,
                           scan=self.scan_layers, remat=self.remat)
    last_B = jnp.sum(tokens_BT != 0, axis=1) - 1
    final_BD = jnp.take_along_axis(self.final_norm(x_BTD), last_B[:, None, None], 1)[:, 0]
    return l2_normalize(final_BD @ self.proj_DE[...].astype(self.dtype))


class CLIP(nnx.Module):
  """Image and text embeddings [B, E] (unit norm) and SigLIP's pair logits."""

  def __init__(self, cfg, image_size: int, channels: int, vocab_size: int, *,
               rngs: nnx.Rngs):
    self.image = ImageTower(cfg, image_size, channels, rngs=rngs)
    self.text = TextTower(cfg, vocab_size, rngs=rngs)
    self.log_scale = param(rngs, nnx.initializers.constant(np.log(10.0)), (), ())
    self.bias = param(rngs, nnx.initializers.constant(-10.0), (), ())

  def logits(self, image_BE: jax.Array, text_CE: jax.Array) -> jax.Array:
    """[B, C] pair logits: scaled cosine similarity plus the bias."""
    return jnp.exp(self.log_scale[...]) * (image_BE @ text_CE.T) + self.bias[...]
