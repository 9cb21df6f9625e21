"""Transformer building blocks shared by the language model and the diffusion transformer.

Every parameter carries logical axis names (see `scaling.mesh`); activations are
constrained by logical names too. Parameters are stored in float32 and cast to the
compute dtype where they are used.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.mesh import constrain
from scaling.models import backend
from scaling.models.backend import attention, dense

Initializer = Callable[..., jax.Array]


def param(rngs: nnx.Rngs, init: Initializer, shape: tuple[int, ...],
          names: tuple[str, ...]) -> nnx.Param:
  """A float32 parameter annotated with the logical names of its dimensions."""
  return nnx.Param(nnx.with_partitioning(init, names)(rngs.params(), shape, jnp.float32))


def fan_in_init(fan_in: int, scale: float = 1.0) -> Initializer:
  """Normal init with std = scale / sqrt(fan_in), for weights of any rank."""
  return nnx.initializers.normal(stddev=scale / fan_in ** 0.5)


class RMSNorm(nnx.Module):
  """Root-mean-square norm with a learned scale; statistics in float32."""

  def __init__(self, dim: int, eps: float, *, rngs: nnx.Rngs):
    self.eps = eps
    self.scale = param(rngs, nnx.initializers.ones, (dim,), ("embed",))

  def __call__(self, x_BLD: jax.Array) -> jax.Array:
    x32 = x_BLD.astype(jnp.float32)
    x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return (x32 * self.scale[...]).astype(x_BLD.dtype)


def rope(x_BLHK: jax.Array, positions_BL: jax.Array, base: float, length: int) -> jax.Array:
  """Rotary position embedding (rotate-half form) applied to queries or keys.

  Positions must lie in [0, length); one at or past `length` reads NaN (`jnp.take`'s fill).
  """
  table_2PK = jnp.asarray(backend.rope_table(length, x_BLHK.shape[-1], base))
  cos_sin_2BLK = jnp.take(table_2PK, positions_BL, axis=1)
  return rotate(x_BLHK, cos_sin_2BLK[0], cos_sin_2BLK[1])


def rotate(x_BLHK: jax.Array, cos_BLK: jax.Array, sin_BLK: jax.Array) -> jax.Array:
  """Rotates each (i, i + K/2) pair of channels by its angle (rotate-half form); the
  angles' cos and sin broadcast over heads and may omit the batch ([L, K/2])."""
  cos_BL1K, sin_BL1K = cos_BLK[..., None, :], sin_BLK[..., None, :]
  x1, x2 = jnp.split(x_BLHK.astype(jnp.float32), 2, axis=-1)
  out = jnp.concatenate([x1 * cos_BL1K - x2 * sin_BL1K, x2 * cos_BL1K + x1 * sin_BL1K], -1)
  return out.astype(x_BLHK.dtype)


def score_scale(cfg) -> float:
  """Attention scores' factor: 1/sqrt(head_dim), or 1/head_dim under muP (where queries and
  keys become correlated as training moves them, and their dot products grow with d)."""
  head_dim = cfg.d_model // cfg.n_heads
  return 1.0 / head_dim if cfg.parametrization == "mup" else head_dim ** -0.5


def readout_multiplier(cfg) -> float:
  """The output layer's factor: 1, or base_width / d_model under muP (so the outputs stay
  of the same size as the model widens; Yang et al. 2022, Tensor Programs V)."""
  return cfg.base_width / cfg.d_model if cfg.parametrization == "mup" else 1.0


class Attention(nnx.Module):
  """Multi-head (optionally grouped-query) self-attention, with rotary positions unless
  `rope_base` is None.

  `causal=False` lets every position attend to every other (the DiT's image patches).
  `implementation` "cudnn" is cuDNN's fused attention (GPUs); "xla" is XLA's (how it is
  laid out per backend: `scaling.models.backend`).
  """

  def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, *,
               rope_base: float | None, dtype: jnp.dtype, implementation: str,
               out_scale: float, rngs: nnx.Rngs, causal: bool = True,
               score_scale: float | None = None):
    head_dim = d_model // n_heads
    self.score_scale = score_scale
    self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, head_dim
    self.causal = causal
    self.rope_base, self.dtype, self.implementation = rope_base, dtype, implementation
    init = fan_in_init(d_model)
    self.q_DHK = param(rngs, init, (d_model, n_heads, head_dim), ("embed", "heads", "head_dim"))
    self.k_DHK = param(rngs, init, (d_model, n_kv_heads, head_dim), ("embed", "kv", "head_dim"))
    self.v_DHK = param(rngs, init, (d_model, n_kv_heads, head_dim), ("embed", "kv", "head_dim"))
    self.o_HKD = param(rngs, fan_in_init(n_heads * head_dim, out_scale),
                       (n_heads, head_dim, d_model), ("heads", "head_dim", "embed"))

  def __call__(self, x_BLD: jax.Array, positions_BL: jax.Array,
               mask_B1LL: jax.Array | None = None, cache: dict | None = None,
               rotary_2LK: jax.Array | None = None):
    """Self-attention over `x`, or, with a KV cache, over everything cached so far.

    `rotary_2LK` (cos and sin of each position's angles) rotates queries and keys by
    positions of any shape (a grid's rows and columns), for a module without `rope_base`.

    With `cache` ({"k", "v"}: [B, S, H_kv, K]), the new keys and values are written at
    each sequence's positions (contiguous from `positions_BL[:, 0]`), queries attend to
    cache slots at or before their own position, and the updated cache is returned too.
    """
    w = lambda p: p[...].astype(self.dtype)
    q_BLHK, k_BLHK, v_BLHK = dense(x_BLD, w(self.q_DHK), w(self.k_DHK), w(self.v_DHK))
    if self.rope_base is not None:
      # Positions index the cache when there is one, else this sequence.
      length = x_BLD.shape[1] if cache is None else cache["k"].shape[1]
      q_BLHK = rope(q_BLHK, positions_BL, self.rope_base, length)
      k_BLHK = rope(k_BLHK, positions_BL, self.rope_base, length)
    elif rotary_2LK is not None:
      q_BLHK = rotate(q_BLHK, rotary_2LK[0], rotary_2LK[1])
      k_BLHK = rotate(k_BLHK, rotary_2LK[0], rotary_2LK[1])
    q_BLHK = constrain(q_BLHK, ("batch", "length", "act_heads", None))
    if cache is not None:
      cache = {"k": write_cache(cache["k"], k_BLHK, positions_BL[:, 0]),
               "v": write_cache(cache["v"], v_BLHK, positions_BL[:, 0])}
      k_BLHK, v_BLHK = cache["k"], cache["v"]
      slots_S = jnp.arange(k_BLHK.shape[1])
      mask_B1LL = (slots_S[None, None, :] <= positions_BL[:, :, None])[:, None]
    out_BLHK = attention(q_BLHK, k_BLHK, v_BLHK, mask_B1LL, causal=self.causal,
                         scale=self.score_scale, implementation=self.implementation)
    return constrain(dense(out_BLHK, w(self.o_HKD)), ("batch", "length", "act_embed")), cache


def write_cache(cache_BSHK: jax.Array, new_BLHK: jax.Array, start_B: jax.Array) -> jax.Array:
  """Writes each sequence's new entries into its cache from its own start slot."""
  write = lambda c, n, s: jax.lax.dynamic_update_slice(c, n.astype(c.dtype), (s, 0, 0))
  cache_BSHK = jax.vmap(write)(cache_BSHK, new_BLHK, start_B)
  return constrain(cache_BSHK, ("batch", None, "act_heads", None))


class Mlp(nnx.Module):
  """Feed-forward layer: GELU, or SwiGLU (gated, with a second input projection)."""

  def __init__(self, d_model: int, d_ff: int, activation: str, *, dtype: jnp.dtype,
               out_scale: float, rngs: nnx.Rngs):
    self.gated, self.dtype = activation == "swiglu", dtype
    self.wi_DF = param(rngs, fan_in_init(d_model), (d_model, d_ff), ("embed", "mlp"))
    if self.gated:
      self.wg_DF = param(rngs, fan_in_init(d_model), (d_model, d_ff), ("embed", "mlp"))
    self.wo_FD = param(rngs, fan_in_init(d_ff, out_scale), (d_ff, d_model), ("mlp", "embed"))

  def __call__(self, x_BLD: jax.Array) -> jax.Array:
    w = lambda p: p[...].astype(self.dtype)
    if self.gated:
      h_BLF = dense(x_BLD, w(self.wi_DF), w(self.wg_DF),
                    activation=lambda h, gate: jax.nn.silu(gate) * h)
    else:
      h_BLF = dense(x_BLD, w(self.wi_DF), activation=jax.nn.gelu)
    h_BLF = constrain(h_BLF, ("batch", "length", "act_mlp"))
    return constrain(dense(h_BLF, w(self.wo_FD)), ("batch", "length", "act_embed"))


class Block(nnx.Module):
  """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x)); with
  `mlp="none"`, attention only (Elhage et al. 2021's models for reading circuits).
  `causal=False` lets every position see every other (an image tower's patches)."""

  def __init__(self, cfg, *, rngs: nnx.Rngs, causal: bool = True):
    dtype = jnp.dtype(cfg.dtype)
    # Residual branches start small so a deep stack begins close to the identity.
    out_scale = (2 * cfg.n_layers) ** -0.5
    self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps, rngs=rngs)
    self.attn = Attention(cfg.d_model, cfg.n_heads, cfg.n_kv_heads, rope_base=cfg.rope_base,
                          dtype=dtype, implementation=cfg.attention, out_scale=out_scale,
                          rngs=rngs, score_scale=score_scale(cfg), causal=causal)
    self.has_mlp = cfg.mlp != "none"
    if self.has_mlp:
      self.mlp_norm = RMSNorm(cfg.d_model, cfg.norm_eps, rngs=rngs)
      self.mlp = Mlp(cfg.d_model, cfg.d_ff, cfg.mlp, dtype=dtype, out_scale=out_scale,
                     rngs=rngs)

  def __call__(self, x_BLD, positions_BL, mask_B1LL=None, cache=None):
    attn_BLD, cache = self.attn(self.attn_norm(x_BLD), positions_BL, mask_B1LL, cache)
    x_BLD = x_BLD + attn_BLD
    if self.has_mlp:
      x_BLD = x_BLD + self.mlp(self.mlp_norm(x_BLD))
    return x_BLD, cache


def stacked(make: Callable[[nnx.Rngs], nnx.Module], n: int, rngs: nnx.Rngs) -> nnx.Module:
  """Creates `n` layers whose parameters are stacked on a leading `layers` axis."""

  @nnx.split_rngs(splits=n)
  @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata={nnx.PARTITION_NAME: "layers"})
  def make_all(rngs):
    return make(rngs)

  return make_all(rngs)


REMAT_POLICIES = {
    "full": None,  # save nothing; recompute the whole layer in the backward pass
    "dots_saveable": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def run_stacked(layers: nnx.Module, x, *args, n: int, scan: bool, remat: str, cache=None,
                collect: bool = False):
  """Applies stacked layers in order: as one `lax.scan` body or unrolled.

  The parameters are stacked either way, so checkpoints do not depend on `scan`. A
  `cache` is stacked the same way (a leading layers axis) and returned updated. With
  `collect`, each layer's output is returned too, stacked on a leading axis (for
  coordinate checks).
  """
  graphdef, state = nnx.split(layers)

  def body(x, layer):
    layer_state, layer_cache = layer
    x, layer_cache = nnx.merge(graphdef, layer_state)(x, *args, cache=layer_cache)
    return x, (layer_cache, x if collect else None)

  if remat != "none":
    body = jax.checkpoint(body, policy=REMAT_POLICIES[remat], prevent_cse=not scan)
  if scan:
    x, (cache, outputs) = jax.lax.scan(body, x, (state, cache))
  else:
    steps = []
    for i in range(n):
      x, step = body(x, jax.tree.map(lambda a: a[i], (state, cache)))
      steps.append(step)
    cache, outputs = jax.tree.map(lambda *c: jnp.stack(c), *steps) if steps else (None, None)
  return (x, cache, outputs) if collect else (x, cache)
