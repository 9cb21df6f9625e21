"""Next-token sampling: temperature, top-k, top-p (nucleus) and min-p over batched logits.

Everything here is a pure function of `logits_BV` (float32, [batch, vocab]), a PRNG key
and a `SamplingConfig`. The config is a frozen (hashable) dataclass, so it can be a static
argument of `jax.jit` and every filter that is switched off costs nothing: the branches
are Python `if`s on the config, decided at trace time, never traced conditionals. This
makes the functions safe to call inside a jitted `lax.while_loop` decode loop.

Filters are applied in the conventional order (as in Hugging Face `generate`):

  1. temperature: logits / T (T == 0 means greedy: keep only the argmax);
  2. top-k: keep the k highest logits;
  3. top-p: keep the nucleus of the distribution renormalised over what top-k kept;
  4. min-p: keep tokens whose probability is at least min_p times the largest.

Filtered-out tokens get logit -inf, so `jax.random.categorical` never draws them and
`jax.nn.softmax` gives them probability exactly 0.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from scaling.errors import UserError


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
  """How to turn logits into the next token.

  Attributes:
    temperature: divides the logits; 0 means greedy (argmax, lowest token id on ties),
      and then top_k, top_p and min_p are irrelevant.
    top_k: keep the k most likely tokens; 0 (or k >= vocab) means no top-k filtering.
    top_p: keep the smallest set of most likely tokens whose probability reaches top_p;
      1.0 means no top-p filtering.
    min_p: keep tokens with probability >= min_p * (largest probability); 0 means off.
  """
  temperature: float = 1.0
  top_k: int = 0
  top_p: float = 1.0
  min_p: float = 0.0

  def validate(self) -> "SamplingConfig":
    """Raises ValueError naming the first invalid field; returns self otherwise."""
    # `not (a <= x)` rather than `x < a`, so that NaN is rejected too.
    if not self.temperature >= 0:
      raise ValueError(f"sampling.temperature must be >= 0 (0 = greedy), got {self.temperature}")
    if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
      raise ValueError(f"sampling.top_k must be an integer >= 0 (0 = off), got {self.top_k!r}")
    if not 0 < self.top_p <= 1:
      raise ValueError(f"sampling.top_p must be in (0, 1] (1 = off), got {self.top_p}")
    if not 0 <= self.min_p < 1:
      raise ValueError(f"sampling.min_p must be in [0, 1) (0 = off), got {self.min_p}")
    return self

  @property
  def greedy(self) -> bool:
    return self.temperature == 0


def _scatter_to_vocab(values_BK, ids_BK, vocab: int, fill):
  """[B, vocab] array of `fill`, with `values_BK` written at token ids `ids_BK`."""
  B = values_BK.shape[0]
  out_BV = jnp.full((B, vocab), fill, values_BK.dtype)
  return out_BV.at[jnp.arange(B)[:, None], ids_BK].set(values_BK)


def _greedy_mask(logits_BV):
  """True at the argmax of each row only (the lowest token id among tied maxima)."""
  ids_B = jnp.argmax(logits_BV, axis=-1)
  return jax.nn.one_hot(ids_B, logits_BV.shape[-1], dtype=jnp.bool_)


def _top_k_mask(logits_BV, k: int):
  """True at exactly k tokens per row: the k largest logits.

  `lax.top_k` is stable (of equal values the lower index comes first), so ties at the
  k-th place are broken in favour of the lower token ids and exactly k tokens survive;
  a threshold test (`logits >= k-th largest`) would keep every tied token instead.
  """
  _, ids_BK = jax.lax.top_k(logits_BV, k)
  return _scatter_to_vocab(jnp.ones(ids_BK.shape, jnp.bool_), ids_BK, logits_BV.shape[-1],
                           False)


def _top_p_mask(logits_BV, top_p: float):
  """True at the nucleus: the smallest prefix of the sorted distribution reaching top_p.

  Tokens are sorted by descending logit, ties by ascending token id (a stable sort), and
  token i of that order is kept iff the probability mass strictly before it is < top_p.
  So the token whose mass crosses top_p is kept, the first token is always kept (the
  mass before it is exactly 0 and top_p > 0), and a top_p below the largest probability
  keeps exactly one token. Tokens already at -inf have probability 0 and sort last.
  """
  V = logits_BV.shape[-1]
  order_BV = jnp.argsort(-logits_BV, axis=-1, stable=True)
  sorted_BV = jnp.take_along_axis(logits_BV, order_BV, axis=-1)
  probs_BV = jax.nn.softmax(sorted_BV, axis=-1)
  # Exclusive cumulative sum: element i is the mass of tokens 0..i-1. Shifting the
  # inclusive cumsum, rather than computing cumsum - probs, makes it exactly 0 for the
  # first token (so that one is always kept) and avoids a cancellation error elsewhere.
  cumsum_BV = jnp.cumsum(probs_BV, axis=-1)
  mass_before_BV = jnp.concatenate([jnp.zeros_like(cumsum_BV[:, :1]), cumsum_BV[:, :-1]],
                                   axis=-1)
  keep_sorted_BV = mass_before_BV < top_p
  return _scatter_to_vocab(keep_sorted_BV, order_BV, V, False)


def _min_p_mask(logits_BV, min_p: float):
  """True at tokens with probability >= min_p * (the largest probability).

  The ratio p_i / p_max is exp(logit_i - logit_max) whatever the normalisation, so it is
  computed from logits directly; the argmax (ratio 1) is always kept since min_p < 1.
  """
  max_B1 = jnp.max(logits_BV, axis=-1, keepdims=True)
  return jnp.exp(logits_BV - max_B1) >= min_p


def process_logits(logits_BV, cfg: SamplingConfig):
  """Applies temperature, top-k, top-p and min-p, in that order; filtered tokens get -inf.

  Args:
    logits_BV: [batch, vocab] logits (cast to float32). Rows are processed independently.
    cfg: the sampling settings (validated here; static under jit).

  Returns:
    float32 [batch, vocab] logits: kept tokens hold logits / temperature, the rest -inf.
    `softmax` of the result is the distribution `sample` draws from.

  Edge cases:
    - temperature == 0 (greedy): only the argmax is kept (lowest id among tied maxima),
      with its raw logit; top_k, top_p and min_p are ignored.
    - top_k == 0 or top_k >= vocab: no top-k filtering. Otherwise exactly top_k tokens
      are kept; ties at the k-th place go to the lower token ids.
    - top_p == 1.0: no top-p filtering (no cumulative sum is even computed, so rounding
      cannot drop tail tokens). Otherwise, on the distribution renormalised after top-k,
      sorted by descending probability (ties: lower token id first), the smallest prefix
      whose cumulative probability is >= top_p is kept, i.e. token i is kept iff the mass
      strictly before it is < top_p. The token that crosses top_p is kept; at least one
      token always is, and a top_p below the largest probability keeps just the top one.
    - min_p == 0: no min-p filtering. Otherwise, after top-p, tokens with probability
      < min_p * max probability are dropped; the most likely token always survives.
  """
  cfg.validate()
  logits_BV = jnp.asarray(logits_BV, jnp.float32)
  V = logits_BV.shape[-1]
  if cfg.greedy:
    return jnp.where(_greedy_mask(logits_BV), logits_BV, -jnp.inf)
  if cfg.temperature != 1.0:
    logits_BV = logits_BV / jnp.float32(cfg.temperature)
  # Each filter sees the output of the one before: masking to -inf is what renormalises
  # the distribution for the next (softmax ignores -inf entries).
  if 0 < cfg.top_k < V:
    logits_BV = jnp.where(_top_k_mask(logits_BV, cfg.top_k), logits_BV, -jnp.inf)
  if cfg.top_p < 1.0:
    logits_BV = jnp.where(_top_p_mask(logits_BV, cfg.top_p), logits_BV, -jnp.inf)
  if cfg.min_p > 0.0:
    logits_BV = jnp.where(_min_p_mask(logits_BV, cfg.min_p), logits_BV, -jnp.inf)
  return logits_BV


def sample(key, logits_BV, cfg: SamplingConfig):
  """Draws the next token of each row: [batch] int32.

  Greedy (temperature == 0) is a plain argmax of the raw logits (lowest id among ties;
  `key` is unused). Otherwise one categorical draw per row from `softmax(process_logits)`.
  Jittable with `cfg` static: `jax.jit(sample, static_argnums=2)`.
  """
  cfg.validate()
  if cfg.greedy:
    return jnp.argmax(jnp.asarray(logits_BV, jnp.float32), axis=-1).astype(jnp.int32)
  return jax.random.categorical(key, process_logits(logits_BV, cfg), axis=-1).astype(jnp.int32)


def probabilities(logits_BV, cfg: SamplingConfig):
  """The exact distribution `sample` draws from: float32 [batch, vocab], rows sum to 1.

  One-hot at the argmax for greedy; otherwise the softmax of `process_logits`, which is
  exactly 0 at every filtered-out token.
  """
  cfg.validate()
  logits_BV = jnp.asarray(logits_BV, jnp.float32)
  if cfg.greedy:
    return _greedy_mask(logits_BV).astype(jnp.float32)
  return jax.nn.softmax(process_logits(logits_BV, cfg), axis=-1)


def from_request(request) -> SamplingConfig:
  """The sampler settings of a `scaling sample` request, checked (one `error:` line)."""
  cfg = SamplingConfig(temperature=request.temperature, top_k=request.top_k,
                       top_p=request.top_p, min_p=request.min_p)
  try:
    cfg.validate()
  except ValueError as e:
    raise UserError(str(e)) from None
  return cfg
