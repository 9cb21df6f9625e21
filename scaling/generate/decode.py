"""Batched generation: one prefill pass over the prompts, then a jitted while-loop decode.

Prompts are right-padded to a common length. Prefill writes their keys and values into a
per-layer KV cache; each decode step feeds every sequence's latest token at that
sequence's own position, so sequences of different prompt lengths decode together. The
loop stops when every sequence has produced a stop token or the length limit is reached.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.generate import sampling
from scaling.mesh import constrain


@dataclasses.dataclass(frozen=True)
class Generation:
  """Generated continuations, `max_new_tokens` wide, padded after each sequence's end.

  tokens:   [B, N] int32, PAD (0) after the end
  logprobs: [B, N] float32, the model's log-probability of each generated token (from
            the raw logits, before temperature or truncation), 0 after the end
  lengths:  [B] number of generated tokens, the stop token included
  """
  tokens: jax.Array
  logprobs: jax.Array
  lengths: jax.Array


def _last_logits(logits_BLV, lengths_B):
  """Each sequence's logits at its last real prompt token."""
  index_B11 = (lengths_B - 1)[:, None, None]
  return jnp.take_along_axis(logits_BLV, index_B11, axis=1)[:, 0]


@functools.partial(jax.jit, static_argnames=("graphdef", "max_new_tokens", "cfg",
                                             "stop_tokens"))
def _generate(graphdef, params, prompts_BP, lengths_B, key, *, max_new_tokens: int,
              cfg: sampling.SamplingConfig, stop_tokens: tuple[int, ...]):
  model = nnx.merge(graphdef, params)
  B, P = prompts_BP.shape
  cache = model.init_cache(B, P + max_new_tokens)
  positions_BP = jnp.broadcast_to(jnp.arange(P), (B, P))
  logits_BPV, cache = model(prompts_BP, positions_BP, cache=cache)
  stops_T = jnp.asarray(stop_tokens, jnp.int32)

  def cond(carry):
    step, done_B = carry[0], carry[3]
    return (step < max_new_tokens) & ~done_B.all()

  def body(carry):
    step, tokens_BN, logprobs_BN, done_B, generated_B, logits_BV, cache, key = carry
    key, subkey = jax.random.split(key)
    token_B = sampling.sample(subkey, logits_BV, cfg)
    logprob_B = jnp.take_along_axis(jax.nn.log_softmax(logits_BV), token_B[:, None], 1)[:, 0]
    live_B = ~done_B
    tokens_BN = tokens_BN.at[:, step].set(jnp.where(live_B, token_B, 0))
    logprobs_BN = logprobs_BN.at[:, step].set(jnp.where(live_B, logprob_B, 0.0))
    generated_B = generated_B + live_B
    done_B = done_B | jnp.isin(token_B, stops_T)
    # The token generated at step s sits at position len + s. Finished sequences keep
    # feeding tokens (their outputs are masked), so every step has one static shape.
    logits_B1V, cache = model(token_B[:, None], (lengths_B + step)[:, None], cache=cache)
    return (step + 1, tokens_BN, logprobs_BN, done_B, generated_B, logits_B1V[:, 0], cache,
            key)

  carry = (jnp.int32(0), jnp.zeros((B, max_new_tokens), jnp.int32),
           jnp.zeros((B, max_new_tokens), jnp.float32), jnp.zeros(B, bool),
           jnp.zeros(B, jnp.int32), _last_logits(logits_BPV, lengths_B), cache, key)
  carry = jax.lax.while_loop(cond, body, carry)
  return carry[1], carry[2], carry[4]


def generate(model: nnx.Module, prompts_BP, lengths_B, *, max_new_tokens: int,
             cfg: sampling.SamplingConfig = sampling.SamplingConfig(temperature=0.0),
             stop_tokens: tuple[int, ...] = (), seed: int = 0) -> Generation:
  """Continues right-padded prompts (`lengths_B` real tokens each) by up to `max_new_tokens`.

  Under an active mesh (`scaling.mesh.activate`), the batch is split over the data axes
  and the heads over `tensor`, as the rules say.
  """
  cfg.validate()
  lengths_B = jnp.asarray(lengths_B, jnp.int32)
  prompts_BP = constrain(jnp.asarray(prompts_BP, jnp.int32), ("batch", None))
  graphdef, params = nnx.split(model)
  tokens, logprobs, lengths = _generate(
      graphdef, params, prompts_BP, lengths_B, jax.random.key(seed),
      max_new_tokens=max_new_tokens, cfg=cfg, stop_tokens=tuple(int(t) for t in stop_tokens))
  return Generation(tokens, logprobs, lengths)
