"""How the models' maths is laid out for each backend: every choice made for speed on one
backend and not on another lives here, so that model code reads as the maths.

XLA's CPU backend:

- Dense layers run on [B*L, ...] rows and are reshaped back (`dense`). XLA's CPU backend
  lowers a matmul whose weight gradient contracts over two dimensions (batch and length) to
  a strided, unvectorised transpose fused into the activation's backward; on rows the same
  maths is one plain matmul (1.4-1.6x faster steps, measured).
- Attention is softmax attention written as two einsums (`einsum_attention`), which
  measured faster than `jax.nn.dot_product_attention`'s XLA path. From head dim 64
  (`HEAD_MAJOR_MIN_HEAD_DIM`) it lays heads before positions: measured fwd+bwd in one
  process against the [B, L, H, K] layout, 7% faster steps at head dim 64 (3M model: 268
  -> 249 ms; D512: 1213 -> 1172 ms), but 4-13% slower at head dims 16-32, where the
  transposes cost more than the products gain.
- Rotary sin and cos come from a table computed once on the host (`rope_table`): XLA's CPU
  backend otherwise recomputes them for every element of every fusion that reads them
  (x heads x batch), which measured 8% of a train step.

GPUs and TPUs: dense layers are einsums over [B, L, ...] as written (accelerators lower
both forms alike, and sharded batch and length dimensions need no merging); attention is
`jax.nn.dot_product_attention` with the configured `implementation` ("xla", or "cudnn" for
cuDNN's fused attention on GPUs). The rotary table is the same host table on every backend.

`on_cpu` is asked when a function is traced, so each compiled program has one layout.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

# From this head dim on, attention on CPU runs faster with heads before positions.
HEAD_MAJOR_MIN_HEAD_DIM = 64


def on_cpu() -> bool:
  """Whether programs are built for XLA's CPU backend (the layouts above)."""
  return jax.default_backend() == "cpu"


def dense(x_BL_: jax.Array, *ws: jax.Array, activation: Callable | None = None):
  """x [B, L, *A] times each w [*A, *C] -> [B, L, *C], contracting x's dims after batch
  and length with w's leading ones: one product, or a tuple of them for several weights.

  `activation`, when given, takes the products and its result is returned instead (gelu
  of one, or a gate of two). On CPU the products and the activation run on [B*L, *A] rows,
  x reshaped once for all of them.
  """
  n = x_BL_.ndim - 2
  if not on_cpu():
    outs = [jnp.tensordot(x_BL_, w, axes=n) for w in ws]
    return _apply(activation, outs)
  B, L = x_BL_.shape[:2]
  x_N_ = x_BL_.reshape(B * L, *x_BL_.shape[2:])
  outs_N_ = _apply(activation, [jnp.tensordot(x_N_, w, axes=n) for w in ws])
  return jax.tree.map(lambda o: o.reshape(B, L, *o.shape[1:]), outs_N_)


def _apply(activation, outs):
  if activation is not None:
    return activation(*outs)
  return outs[0] if len(outs) == 1 else tuple(outs)


def attention(q_BLHK, k_BSGK, v_BSGK, mask_B1LS, *, causal: bool, scale: float | None,
              implementation: str):
  """Softmax attention of [B, L, H, K] queries over [B, S, G, K] keys and values, G dividing
  H (grouped-query heads share their key/value head). `mask_B1LS` (True: attend), when
  given, replaces the causal mask; `scale` defaults to 1/sqrt(K); `implementation` is
  `jax.nn.dot_product_attention`'s ("xla" or "cudnn")."""
  if implementation == "xla" and on_cpu():
    return einsum_attention(q_BLHK, k_BSGK, v_BSGK, mask_B1LS, causal, scale)
  return jax.nn.dot_product_attention(
      q_BLHK, k_BSGK, v_BSGK, mask=mask_B1LS, scale=scale,
      is_causal=causal and mask_B1LS is None, implementation=implementation)


def einsum_attention(q_BLHK, k_BSGK, v_BSGK, mask_B1LS, causal: bool,
                     scale: float | None = None, head_major: bool | None = None):
  """Softmax attention as two einsums (grouped-query heads share their key/value head).

  `scale` multiplies the scores (default 1/sqrt(head_dim)). `head_major` lays each
  (sequence, key/value head) out as one contiguous [R*L, K] x [K, S] product, its R query
  heads stacked along the rows; by default it is used for head dims from
  HEAD_MAJOR_MIN_HEAD_DIM and more than one query position (decoding one position at a
  time would copy the whole cache).
  """
  B, L, H, K = q_BLHK.shape
  S, G = k_BSGK.shape[1], k_BSGK.shape[2]
  R = H // G
  scale = K ** -0.5 if scale is None else scale
  if head_major is None:
    head_major = K >= HEAD_MAJOR_MIN_HEAD_DIM and L > 1
  if causal and mask_B1LS is None:
    mask_B1LS = jnp.tril(jnp.ones((L, S), bool))[None, None]
  if head_major:
    q_BGQK = jnp.transpose(q_BLHK.reshape(B, L, G, R, K), (0, 2, 3, 1, 4)).reshape(B, G, R * L, K)
    k_BGSK, v_BGSK = jnp.swapaxes(k_BSGK, 1, 2), jnp.swapaxes(v_BSGK, 1, 2)
    scores_BGQS = jnp.einsum("bgqk,bgsk->bgqs", q_BGQK, k_BGSK).astype(jnp.float32) * scale
    mask_B1QS = None if mask_B1LS is None else jnp.tile(mask_B1LS, (1, 1, R, 1))
    probs_BGQS = _masked_softmax(scores_BGQS, mask_B1QS, v_BSGK.dtype)
    out_BGQK = jnp.einsum("bgqs,bgsk->bgqk", probs_BGQS, v_BGSK)
    return jnp.transpose(out_BGQK.reshape(B, G, R, L, K), (0, 3, 1, 2, 4)).reshape(B, L, H, K)
  q_BLGRK = q_BLHK.reshape(B, L, G, R, K)
  scores_BGRLS = jnp.einsum("blgrk,bsgk->bgrls", q_BLGRK, k_BSGK).astype(jnp.float32) * scale
  mask_B1RLS = None if mask_B1LS is None else mask_B1LS[:, :, None]
  probs_BGRLS = _masked_softmax(scores_BGRLS, mask_B1RLS, v_BSGK.dtype)
  out_BLGRK = jnp.einsum("bgrls,bsgk->blgrk", probs_BGRLS, v_BSGK)
  return out_BLGRK.reshape(B, L, H, K)


def _masked_softmax(scores, mask, dtype):
  """Softmax over the last axis where `mask` (broadcast) is True, in float32."""
  if mask is not None:
    scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
  return jax.nn.softmax(scores, axis=-1).astype(dtype)


@functools.lru_cache(maxsize=64)
def rope_table(length: int, head_dim: int, base: float) -> np.ndarray:
  """[2, length, head_dim // 2]: the cos and sin of every position's rotary angles, computed
  on the host in float64 and read as a constant."""
  half = head_dim // 2
  freq_K = base ** (-np.arange(half, dtype=np.float64) / half)
  angle_PK = np.arange(length, dtype=np.float64)[:, None] * freq_K
  return np.stack([np.cos(angle_PK), np.sin(angle_PK)]).astype(np.float32)
