"""A class-conditional GAN of two transformers built from the DiT's blocks.

Generator: a style transformer, as in StyleGAN but with attention. Its input is constant
(the fixed 2D sin-cos table, one token per output patch); the latent `z` and the class go
through a mapping MLP into a style vector that every block reads through adaLN, and each
token is projected to one p x p patch of the image (tanh, so pixels lie in [-1, 1]).

Discriminator: patches of the image as tokens (the DiT's patch embedding and positions),
blocks conditioned on the class through adaLN, then mean-pooled features scored by a
linear head plus a projection term <class embedding, features> (Miyato & Koyama 2018).

Both live in one module (`GAN.generator`, `GAN.discriminator`), so one checkpoint holds
both and the mesh rules shard both; the two optimizers each see one half (see
`scaling.families.gan`). Logical axes are the DiT's (`embed`, `heads`, `mlp`, `patch`,
`cond`, `cond_embed`); the latent's width is a fixed-size `cond` input, like the class rows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.mesh import constrain
from scaling.models.dit import (AdaLN, DiTBlock, layer_norm, modulate, patchify, sincos_2d,
                                unpatchify)
from scaling.models.backend import dense
from scaling.models.layers import fan_in_init, param, run_stacked, stacked

CLASS_INIT_STD = 1.0  # class embeddings start as large as the latent's contribution


class Generator(nnx.Module):
  """[B, H, W, C] images in [-1, 1] from latents `z_BZ` and class labels `labels_B`."""

  def __init__(self, cfg, image_size: int, channels: int, num_classes: int, latent_dim: int,
               *, rngs: nnx.Rngs):
    D, p = cfg.d_model, cfg.patch_size
    P = p * p * channels
    self.image_size, self.channels, self.patch_size = image_size, channels, p
    self.dtype = jnp.dtype(cfg.dtype)
    self.n_layers, self.scan_layers, self.remat = cfg.n_layers, cfg.scan_layers, cfg.remat
    self.eps = cfg.norm_eps
    self.map_in_ZD = param(rngs, fan_in_init(latent_dim), (latent_dim, D), ("cond", "embed"))
    self.map_in_b_D = param(rngs, nnx.initializers.zeros, (D,), ("embed",))
    self.map_out_DD = param(rngs, fan_in_init(D), (D, D), ("cond_embed", "embed"))
    self.map_out_b_D = param(rngs, nnx.initializers.zeros, (D,), ("embed",))
    self.class_KD = param(rngs, nnx.initializers.normal(CLASS_INIT_STD), (num_classes, D),
                          ("cond", "embed"))
    self.blocks = stacked(lambda r: DiTBlock(cfg, rngs=r), cfg.n_layers, rngs)
    self.final_ada = AdaLN(D, 2, dtype=self.dtype, rngs=rngs)
    # Not zero (unlike the DiT's): a generator that starts constant gives the
    # discriminator nothing to tell apart but the mean.
    self.out_DP = param(rngs, fan_in_init(D), (D, P), ("embed", "patch"))
    self.out_b_P = param(rngs, nnx.initializers.zeros, (P,), ("patch",))

  def style(self, z_BZ: jax.Array, labels_B: jax.Array) -> jax.Array:
    """The style vector [B, D] every block reads: mapping MLP of z plus class embedding."""
    w = lambda v: v[...].astype(self.dtype)
    h_BD = jax.nn.silu(z_BZ.astype(self.dtype) @ w(self.map_in_ZD) + w(self.map_in_b_D))
    class_KD = constrain(w(self.class_KD), (None, None))  # tiny: gathered whole
    s_BD = h_BD @ w(self.map_out_DD) + w(self.map_out_b_D) + jnp.take(class_KD, labels_B, 0)
    return constrain(s_BD, ("batch", "act_embed"))

  def __call__(self, z_BZ: jax.Array, labels_B: jax.Array) -> jax.Array:
    return self._forward(z_BZ, labels_B)[0]

  def _forward(self, z_BZ, labels_B, collect=False):
    w = lambda v: v[...].astype(self.dtype)
    B, grid = z_BZ.shape[0], self.image_size // self.patch_size
    D = self.map_out_DD.shape[-1]
    s_BD = self.style(z_BZ, labels_B)
    # A constant of the shapes, folded into the compiled program.
    x_LD = jnp.asarray(sincos_2d(grid, D), self.dtype)
    x_BLD = constrain(jnp.broadcast_to(x_LD, (B, *x_LD.shape)), ("batch", "length", "act_embed"))
    x_BLD, _, *outputs = run_stacked(self.blocks, x_BLD, s_BD, n=self.n_layers,
                                     scan=self.scan_layers, remat=self.remat, collect=collect)
    shift_BD, scale_BD = self.final_ada(s_BD)
    x_BLD = modulate(layer_norm(x_BLD, self.eps), shift_BD, scale_BD)
    out_BLP = dense(x_BLD, w(self.out_DP)) + w(self.out_b_P)
    images = jnp.tanh(unpatchify(out_BLP, self.patch_size, self.image_size,
                                 self.channels).astype(jnp.float32))
    return images, (outputs[0] if collect else None)


class Discriminator(nnx.Module):
  """One real-vs-generated logit per image [B, H, W, C] of class `labels_B`."""

  def __init__(self, cfg, image_size: int, channels: int, num_classes: int, *,
               rngs: nnx.Rngs):
    D, p = cfg.d_model, cfg.patch_size
    P = p * p * channels
    self.image_size, self.patch_size = image_size, p
    self.dtype = jnp.dtype(cfg.dtype)
    self.n_layers, self.scan_layers, self.remat = cfg.n_layers, cfg.scan_layers, cfg.remat
    self.eps = cfg.norm_eps
    self.patch_PD = param(rngs, fan_in_init(P), (P, D), ("patch", "embed"))
    self.patch_b_D = param(rngs, nnx.initializers.zeros, (D,), ("embed",))
    self.class_KD = param(rngs, nnx.initializers.normal(CLASS_INIT_STD), (num_classes, D),
                          ("cond", "embed"))
    self.blocks = stacked(lambda r: DiTBlock(cfg, rngs=r), cfg.n_layers, rngs)
    self.head_D = param(rngs, fan_in_init(D), (D,), ("embed",))
    self.project_KD = param(rngs, fan_in_init(D), (num_classes, D), ("cond", "embed"))

  def __call__(self, x_BHWC: jax.Array, labels_B: jax.Array) -> jax.Array:
    return self._forward(x_BHWC, labels_B)[0]

  def _forward(self, x_BHWC, labels_B, collect=False):
    w = lambda v: v[...].astype(self.dtype)
    x_BLP = patchify(x_BHWC.astype(self.dtype), self.patch_size)
    x_BLD = dense(x_BLP, w(self.patch_PD)) + w(self.patch_b_D)
    x_BLD = x_BLD + jnp.asarray(sincos_2d(self.image_size // self.patch_size,
                                          x_BLD.shape[-1]), self.dtype)
    x_BLD = constrain(x_BLD, ("batch", "length", "act_embed"))
    class_KD = constrain(w(self.class_KD), (None, None))
    c_BD = constrain(jnp.take(class_KD, labels_B, 0), ("batch", "act_embed"))
    x_BLD, _, *outputs = run_stacked(self.blocks, x_BLD, c_BD, n=self.n_layers,
                                     scan=self.scan_layers, remat=self.remat, collect=collect)
    h_BD = layer_norm(x_BLD, self.eps).mean(axis=1)
    project_KD = constrain(w(self.project_KD), (None, None))
    logit_B = h_BD @ w(self.head_D) + (h_BD * jnp.take(project_KD, labels_B, 0)).sum(-1)
    return logit_B.astype(jnp.float32), (outputs[0] if collect else None)


class GAN(nnx.Module):
  """The generator and the discriminator of one run, side by side: two networks of the
  same shape (the config's `model` section)."""

  def __init__(self, cfg, image_size: int, channels: int, num_classes: int, latent_dim: int,
               *, rngs: nnx.Rngs):
    self.latent_dim = latent_dim
    self.generator = Generator(cfg, image_size, channels, num_classes, latent_dim, rngs=rngs)
    self.discriminator = Discriminator(cfg, image_size, channels, num_classes, rngs=rngs)

  def latents(self, key: jax.Array, batch: int) -> jax.Array:
    """The generator's standard normal input for `batch` images, split over the batch."""
    z_BZ = jax.random.normal(key, (batch, self.latent_dim), jnp.float32)
    return constrain(z_BZ, ("batch", None))

  def activations(self, z_BZ, labels_B) -> dict[str, jax.Array]:
    """Mean absolute value of every block's output in both networks (coordinate checks)."""
    images, g_layers = self.generator._forward(z_BZ, labels_B, collect=True)
    logits, d_layers = self.discriminator._forward(images, labels_B, collect=True)
    axes = tuple(range(1, g_layers.ndim))
    out = {f"generator_block_{i}": v for i, v in enumerate(jnp.abs(g_layers).mean(axes))}
    out.update({f"discriminator_block_{i}": v
                for i, v in enumerate(jnp.abs(d_layers).mean(axes))})
    out["images"], out["logits"] = jnp.abs(images).mean(), jnp.abs(logits).mean()
    return out
