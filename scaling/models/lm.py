"""Decoder-only transformer language model."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.mesh import constrain
from scaling.models.backend import dense
from scaling.models.layers import (Block, RMSNorm, param, readout_multiplier, run_stacked,
                                   stacked)


class LM(nnx.Module):
  """Token embedding, a stack of pre-norm blocks, final norm, tied or untied head."""

  def __init__(self, cfg, vocab_size: int, *, rngs: nnx.Rngs):
    self.vocab_size = vocab_size
    self.dtype = jnp.dtype(cfg.dtype)
    self.n_layers, self.scan_layers, self.remat = cfg.n_layers, cfg.scan_layers, cfg.remat
    self.tie_embeddings = cfg.tie_embeddings
    self.readout = readout_multiplier(cfg)  # 1, or base_width / d_model under muP
    # std 1/sqrt(D): embedded tokens have unit norm and, when tied, logits unit variance.
    # Under muP the embedding is an input layer whose size must not shrink with width:
    # its std stays that of the base width.
    std = (cfg.base_width if cfg.parametrization == "mup" else cfg.d_model) ** -0.5
    self.embed_VD = param(rngs, nnx.initializers.normal(std),
                          (vocab_size, cfg.d_model), ("vocab", "embed"))
    self.blocks = stacked(lambda r: Block(cfg, rngs=r), cfg.n_layers, rngs)
    self.final_norm = RMSNorm(cfg.d_model, cfg.norm_eps, rngs=rngs)
    if not cfg.tie_embeddings:
      # Under muP an untied readout starts at zero (Yang et al. 2022): its init would
      # otherwise shrink with width under the readout multiplier.
      head_init = (nnx.initializers.zeros if cfg.parametrization == "mup"
                   else nnx.initializers.normal(cfg.d_model ** -0.5))
      self.head_DV = param(rngs, head_init, (cfg.d_model, vocab_size), ("embed", "vocab"))

  def __call__(self, tokens_BL: jax.Array, positions_BL: jax.Array | None = None,
               segment_ids_BL: jax.Array | None = None, cache: dict | None = None):
    """Float32 next-token logits [B, L, V]. Segment ids restrict attention to a document.

    With a KV `cache` (from `init_cache`), returns `(logits, updated cache)`: the tokens
    are appended at `positions_BL` and attend to everything cached before them.
    """
    logits_BLV, new_cache, _ = self._forward(tokens_BL, positions_BL, segment_ids_BL, cache)
    return logits_BLV if cache is None else (logits_BLV, new_cache)

  def activations(self, tokens_BL: jax.Array) -> dict[str, jax.Array]:
    """Mean absolute value of the embedding, every block's output and the logits."""
    logits_BLV, _, layers = self._forward(tokens_BL, None, None, None, collect=True)
    return {"embedding": layers["embedding"],
            **{f"block_{i}": v for i, v in enumerate(layers["blocks"])},
            "logits": jnp.abs(logits_BLV).mean()}

  def _forward(self, tokens_BL, positions_BL, segment_ids_BL, cache, collect=False):
    if positions_BL is None:
      positions_BL = jnp.broadcast_to(jnp.arange(tokens_BL.shape[1]), tokens_BL.shape)
    mask_B1LL = None
    if segment_ids_BL is not None:
      L = tokens_BL.shape[1]
      same_BLL = segment_ids_BL[:, :, None] == segment_ids_BL[:, None, :]
      mask_B1LL = (same_BLL & jnp.tril(jnp.ones((L, L), bool)))[:, None]
    x_BLD = jnp.take(self.embed_VD[...], tokens_BL, axis=0).astype(self.dtype)
    x_BLD = constrain(x_BLD, ("batch", "length", "act_embed"))
    stacked_out = run_stacked(self.blocks, x_BLD, positions_BL, mask_B1LL, n=self.n_layers,
                              scan=self.scan_layers, remat=self.remat, cache=cache,
                              collect=collect)
    layers = None
    if collect:
      layers = {"embedding": jnp.abs(x_BLD).mean(),
                "blocks": jnp.abs(stacked_out[2]).mean(axis=tuple(range(1, x_BLD.ndim + 1)))}
    x_BLD, new_cache = stacked_out[:2]
    x_BLD = self.final_norm(x_BLD)
    head_DV = self.embed_VD[...].T if self.tie_embeddings else self.head_DV[...]
    logits_BLV = dense(x_BLD, head_DV.astype(self.dtype))
    if self.readout != 1.0:
      logits_BLV = logits_BLV * self.readout
    return logits_BLV.astype(jnp.float32), new_cache, layers

  def init_cache(self, batch: int, length: int) -> dict:
    """An empty KV cache for `batch` sequences of up to `length` tokens, per layer."""
    attn = self.blocks.attn
    shape = (self.n_layers, batch, length, attn.n_kv_heads, attn.head_dim)
    return {"k": jnp.zeros(shape, self.dtype), "v": jnp.zeros(shape, self.dtype)}
