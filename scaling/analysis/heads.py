"""What attention heads do: each head's attention pattern, its induction score, the
in-context loss improvement, and exact match with each head mean-ablated.

The model's attention is fused (it never materialises the weights), so a probe pass
recomputes each layer from the model's own modules and parameters with the attention
written out; it reproduces the model's logits (tested), and can replace a head's output.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling.data.tokenizer import BOS_ID, EOS_ID
from scaling.models.layers import rope

# Olsson et al. (2022) take the loss at token 500 minus token 50 of 512; the same shares
# of the context the model was trained on.
ICL_LATE, ICL_EARLY = 500 / 512, 50 / 512


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _probe(graphdef, state, tokens_BL, ablate_NH, means_NHK):
  """Logits [B, L, V], attention weights [N, B, H, L, L] and each head's output before the
  output projection [N, B, L, H, K]; heads with `ablate_NH` True output `means_NHK`."""
  model = nnx.merge(graphdef, state)
  blocks_graph, blocks_state = nnx.split(model.blocks)
  B, L = tokens_BL.shape
  positions_BL = jnp.broadcast_to(jnp.arange(L), (B, L))
  causal_LL = jnp.tril(jnp.ones((L, L), bool))
  x_BLD = jnp.take(model.embed_VD[...], tokens_BL, axis=0)
  probs, outs = [], []
  for i in range(model.n_layers):
    block = nnx.merge(blocks_graph, jax.tree.map(lambda a: a[i], blocks_state))
    attn = block.attn
    h_BLD = block.attn_norm(x_BLD)
    q_BLHK = jnp.einsum("bld,dhk->blhk", h_BLD, attn.q_DHK[...])
    k_BLGK = jnp.einsum("bld,dgk->blgk", h_BLD, attn.k_DHK[...])
    v_BLGK = jnp.einsum("bld,dgk->blgk", h_BLD, attn.v_DHK[...])
    if attn.rope_base is not None:
      q_BLHK = rope(q_BLHK, positions_BL, attn.rope_base, L)
      k_BLGK = rope(k_BLGK, positions_BL, attn.rope_base, L)
    # Query head h reads key/value head h // (H / G), as grouped-query attention does.
    repeat = attn.n_heads // attn.n_kv_heads
    k_BLHK, v_BLHK = (jnp.repeat(t, repeat, axis=2) for t in (k_BLGK, v_BLGK))
    scale = attn.head_dim ** -0.5 if attn.score_scale is None else attn.score_scale
    scores_BHLL = jnp.einsum("blhk,bshk->bhls", q_BLHK, k_BLHK) * scale
    probs_BHLL = jax.nn.softmax(jnp.where(causal_LL, scores_BHLL, -jnp.inf), axis=-1)
    out_BLHK = jnp.einsum("bhls,bshk->blhk", probs_BHLL, v_BLHK)
    out_BLHK = jnp.where(ablate_NH[i][None, None, :, None], means_NHK[i][None, None], out_BLHK)
    x_BLD = x_BLD + jnp.einsum("blhk,hkd->bld", out_BLHK, attn.o_HKD[...])
    if block.has_mlp:
      x_BLD = x_BLD + block.mlp(block.mlp_norm(x_BLD))
    probs.append(probs_BHLL)
    outs.append(out_BLHK)
  x_BLD = model.final_norm(x_BLD)
  head_DV = model.embed_VD[...].T if model.tie_embeddings else model.head_DV[...]
  logits_BLV = jnp.einsum("bld,dv->blv", x_BLD, head_DV) * model.readout
  return logits_BLV, jnp.stack(probs), jnp.stack(outs)


def probe(model, tokens_BL, ablate=None, means_NHK=None):
  """`_probe` on a model: (logits, attention weights, head outputs) as numpy arrays.
  `ablate`: (layer, head) pairs whose output is replaced by `means_NHK` (mean ablation)."""
  attn = model.blocks.attn
  shape = (model.n_layers, attn.n_heads)
  ablate_NH = np.zeros(shape, bool)
  for layer, head in ablate or ():
    ablate_NH[layer, head] = True
  if means_NHK is None:
    means_NHK = np.zeros((*shape, attn.head_dim), np.float32)
  graphdef, state = nnx.split(model)
  return tuple(np.asarray(a) for a in _probe(graphdef, state, jnp.asarray(tokens_BL),
                                             jnp.asarray(ablate_NH), jnp.asarray(means_NHK)))


def repeated_random_tokens(n: int, length: int, vocab_size: int, seed: int = 0,
                           pool: np.ndarray | None = None) -> np.ndarray:
  """[n, 1 + 2 * length]: BOS, then `length` random ordinary tokens (uniform over the
  vocabulary, or over `pool`), then the same again."""
  rng = np.random.default_rng(seed)
  first = (rng.integers(EOS_ID + 2, vocab_size, (n, length)) if pool is None
           else rng.choice(np.asarray(pool), (n, length)))
  return np.concatenate([np.full((n, 1), BOS_ID), first, first], axis=1).astype(np.int32)


def induction_scores(probs_NBHLL: np.ndarray, length: int) -> np.ndarray:
  """[N, H]: the mean attention from each token of the second repeat (position
  `length + j`, after BOS) to the token that followed its first occurrence (`j + 1`),
  over j = 1 .. length - 1 and the batch (Olsson et al. 2022). 1: a perfect induction
  head; 0: a head that never looks there."""
  j = np.arange(1, length)
  return probs_NBHLL[:, :, :, length + j, j + 1].mean(axis=(1, 3))


def token_losses(logits_BLV: np.ndarray, tokens_BL: np.ndarray) -> np.ndarray:
  """[B, L - 1]: the loss of each next token."""
  logp = jax.nn.log_softmax(jnp.asarray(logits_BLV[:, :-1]), axis=-1)
  return -np.asarray(jnp.take_along_axis(logp, jnp.asarray(tokens_BL[:, 1:, None]), -1))[..., 0]


def repeat_loss_drop(logits_BLV: np.ndarray, tokens_BL: np.ndarray, length: int) -> float:
  """Mean loss on the first random half minus on its repeat: what copying from context buys
  (about log V for a model that copies perfectly, 0 for one that does not copy)."""
  losses = token_losses(logits_BLV, tokens_BL)  # loss j predicts token j + 1
  return float(losses[:, 1:length].mean() - losses[:, length + 1:].mean())


def in_context_improvement(loss_by_position: np.ndarray, tokens_by_position: np.ndarray,
                           least: int = 10) -> dict:
  """Olsson et al.'s in-context learning score, scaled to the trained context: the loss at
  the position 50/512 of the way in minus at 500/512 (positive: later tokens are easier).
  None, with the reason, where fewer than `least` held-out tokens sit at either position
  (documents shorter than the context, as generated problems are)."""
  L = len(loss_by_position)
  early, late = max(round(ICL_EARLY * L), 1), min(round(ICL_LATE * L), L - 1)
  out = {"early_position": early, "late_position": late, "improvement": None}
  if min(tokens_by_position[early], tokens_by_position[late]) < least:
    return {**out, "why": f"fewer than {least} held-out tokens at position {early} or "
                          f"{late}: the documents are shorter than the context"}
  return {**out, "early_loss": float(loss_by_position[early]),
          "late_loss": float(loss_by_position[late]),
          "improvement": float(loss_by_position[early] - loss_by_position[late])}


def answer_rows(tokenizer, items, length: int) -> tuple[np.ndarray, np.ndarray]:
  """Teacher-forcing rows BOS + prompt + answer + EOS, right-padded to `length`, and the
  mask of the positions whose next token is part of the answer (or its EOS)."""
  tokens = np.zeros((len(items), length), np.int32)
  mask = np.zeros((len(items), length - 1), bool)
  for i, item in enumerate(items):
    prompt, answer = tokenizer.encode(item.prompt), tokenizer.encode(item.answer)
    row = [BOS_ID, *prompt, *answer, EOS_ID][:length]
    tokens[i, :len(row)] = row
    mask[i, len(prompt):len(row) - 1] = True
  return tokens, mask


def operand_digit_positions(tokenizer, item, reverse: bool) -> list[tuple[int, list[int]]]:
  """For an addition problem `a+b=` in `answer_rows` layout: per answer digit, the position
  that predicts it and the positions of the operand digits of its place value (what it
  needs besides the carry). Empty for anything else."""
  pieces, answer = tokenizer.pieces(item.prompt), tokenizer.pieces(item.answer)
  if "+" not in pieces or pieces[-1] != "=":
    return []
  plus = pieces.index("+")
  operands = [pieces[:plus], pieces[plus + 1:-1]]
  if not all(p.isdigit() and len(p) == 1 for p in [*operands[0], *operands[1], *answer]):
    return []
  starts = [1, plus + 2]  # after BOS; the second operand after "+"
  out = []
  for j in range(len(answer)):
    place = j if reverse else len(answer) - 1 - j
    needed = [start + len(digits) - 1 - place for start, digits in zip(starts, operands)
              if place < len(digits)]
    if needed:
      out.append((len(pieces) + j, needed))  # the query before answer digit j
  return out


def operand_attention(probs_NBHLL: np.ndarray, targets: list[list[tuple[int, list[int]]]]):
  """[N, H]: the mean attention mass each head puts, from the position that predicts an
  answer digit, on the operand digits of that digit's place; and what uniform attention
  would put there (the share those positions are of the visible ones)."""
  mass, uniform = [], []
  for b, pairs in enumerate(targets):
    for query, keys in pairs:
      mass.append(probs_NBHLL[:, b, :, query][..., keys].sum(-1))  # [N, H]
      uniform.append(len(keys) / (query + 1))
  if not mass:
    return None, None
  return np.mean(mass, axis=0), float(np.mean(uniform))


def exact_match(logits_BLV: np.ndarray, tokens_BL: np.ndarray, mask_BL: np.ndarray) -> np.ndarray:
  """Per row: whether greedy decoding gives the answer, i.e. the argmax is the answer's next
  token at every answer position (greedy reproduces the answer iff each step does)."""
  right = logits_BLV[:, :-1].argmax(-1) == tokens_BL[:, 1:]
  return np.where(mask_BL, right, True).all(axis=1)


def ablation(model, tokens_BL: np.ndarray, mask_BL: np.ndarray) -> dict:
  """Exact match of the whole model, and with each head's output replaced by its mean over
  these rows' answer positions (mean ablation), one head at a time."""
  logits, _, outs_NBLHK = probe(model, tokens_BL)
  # The mean over the positions that predict answer tokens, where the heads do the work.
  weights = np.zeros(tokens_BL.shape, np.float32)
  weights[:, :-1] = mask_BL
  means_NHK = np.einsum("nblhk,bl->nhk", outs_NBLHK, weights) / weights.sum()
  base = exact_match(logits, tokens_BL, mask_BL).mean()
  N, H = means_NHK.shape[:2]
  drop = np.zeros((N, H))
  for layer in range(N):
    for head in range(H):
      ablated, _, _ = probe(model, tokens_BL, [(layer, head)], means_NHK)
      drop[layer, head] = base - exact_match(ablated, tokens_BL, mask_BL).mean()
  return {"exact_match": float(base), "drop": drop.tolist(), "n": int(len(tokens_BL))}
