"""Run a model over benchmark items: greedy answers and teacher-forced log-probabilities.

Both views come from the same model on the same items, so a sharp metric (exact match of
the greedy answer) and smooth ones (log-probability of the correct answer, per-character
accuracy) can be compared item by item.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from scaling.data.tokenizer import BOS_ID, EOS_ID, Tokenizer
from scaling.generate import decode, sampling

_BUCKET = 16  # pad lengths to multiples of this


@dataclasses.dataclass
class Outputs:
  """Per item: the greedy continuation, the log-probs of the answer's tokens (+ <eos>), and
  the log-probability of the greedy continuation itself (the model's confidence in it)."""
  prediction: str
  answer_token_logprobs: np.ndarray
  choice_logprobs: np.ndarray | None = None
  prediction_logprob: float | None = None


@dataclasses.dataclass(frozen=True)
class Continuation:
  """A generated continuation and its log-probability under the model (before any
  temperature or truncation), its stop token included."""
  text: str
  logprob: float


def _bucket(n: int) -> int:
  return -(-n // _BUCKET) * _BUCKET


def _pad(seqs: list[list[int]], batch: int, length: int) -> tuple[np.ndarray, np.ndarray]:
  """Right-pads to [batch, length]: one shape for every batch, so one compilation."""
  out = np.zeros((batch, length), np.int32)
  for i, s in enumerate(seqs):
    out[i, :len(s)] = s
  lengths = np.array([len(s) for s in seqs] + [1] * (batch - len(seqs)))
  return out, lengths


@jax.jit
def _token_logprobs(model, tokens_BL):
  logits_BLV = model(tokens_BL)
  return jnp.take_along_axis(jax.nn.log_softmax(logits_BLV[:, :-1]), tokens_BL[:, 1:, None],
                             -1)[..., 0]


def continuation_logprobs(model, tokenizer: Tokenizer, prompts: list[str],
                          continuations: list[str], *, batch: int) -> list[np.ndarray]:
  """Log-probs of each continuation's tokens and a final <eos>, given its prompt."""
  out = []
  all_prompts, all_conts = tokenizer.encode_batch(prompts), tokenizer.encode_batch(continuations)
  length = _bucket(max(len(p) + len(c) + 2 for p, c in zip(all_prompts, all_conts)))
  for start in range(0, len(prompts), batch):
    prompt_ids = all_prompts[start:start + batch]
    cont_ids = all_conts[start:start + batch]
    seqs = [[BOS_ID, *p, *c, EOS_ID] for p, c in zip(prompt_ids, cont_ids)]
    tokens, _ = _pad(seqs, batch, length)
    logp = np.asarray(_token_logprobs(model, jnp.asarray(tokens)))
    for i, (p, c) in enumerate(zip(prompt_ids, cont_ids)):
      first = len(p)  # log-prob of sequence token j + 1 sits at index j
      out.append(logp[i, first:first + len(c) + 1])
  return out


def greedy_continuations(model, tokenizer: Tokenizer, prompts: list[str],
                         max_new_tokens: list[int], *, batch: int) -> list[Continuation]:
  """Greedy continuations up to <eos> or each item's token budget (`sampled_continuations`
  at temperature 0: one shape per batch, so generation compiles once)."""
  drawn = sampled_continuations(model, tokenizer, prompts, max_new_tokens, n=1,
                                cfg=sampling.SamplingConfig(temperature=0.0), seed=0,
                                batch=batch)
  return [continuations[0] for continuations in drawn]


def greedy_answers(model, tokenizer: Tokenizer, prompts: list[str], max_new_tokens: list[int],
                   *, batch: int) -> list[str]:
  """The texts of `greedy_continuations`."""
  return [c.text for c in greedy_continuations(model, tokenizer, prompts, max_new_tokens,
                                               batch=batch)]


def batch_seed(seed: int, index: int) -> int:
  """The PRNG seed of batch `index` of a sampling call seeded with `seed`: batches draw
  independent streams, and the same call draws the same samples."""
  return int(np.random.SeedSequence([seed, index]).generate_state(1)[0] >> 1)


def sampled_answers(model, tokenizer: Tokenizer, prompts: list[str], max_new_tokens: list[int],
                    *, n: int, cfg: sampling.SamplingConfig, seed: int,
                    batch: int) -> list[list[str]]:
  """The texts of `sampled_continuations`."""
  drawn = sampled_continuations(model, tokenizer, prompts, max_new_tokens, n=n, cfg=cfg,
                                seed=seed, batch=batch)
  return [[c.text for c in continuations] for continuations in drawn]


def sampled_continuations(model, tokenizer: Tokenizer, prompts: list[str],
                          max_new_tokens: list[int], *, n: int, cfg: sampling.SamplingConfig,
                          seed: int, batch: int) -> list[list[Continuation]]:
  """`n` sampled continuations of each prompt, up to <eos> or its token budget.

  The n copies of every prompt are laid out in rows of `batch`, all of one shape, so the
  sampler compiles once however many prompts there are. Greedy settings draw one
  continuation and repeat it: every draw would be the same.
  """
  if n == 0 or not prompts:
    return [[] for _ in prompts]
  draws = 1 if cfg.greedy else n
  all_ids = [[BOS_ID, *p] for p in tokenizer.encode_batch(prompts)]
  rows = [i for i in range(len(prompts)) for _ in range(draws)]
  length, budget = _bucket(max(map(len, all_ids))), max(max_new_tokens)
  drawn = []
  for index, start in enumerate(range(0, len(rows), batch)):
    chunk = rows[start:start + batch]
    tokens, lengths = _pad([all_ids[i] for i in chunk], batch, length)
    gen = decode.generate(model, tokens, lengths, max_new_tokens=budget, cfg=cfg,
                          stop_tokens=(EOS_ID,), seed=batch_seed(seed, index))
    gen_tokens, gen_logprobs = np.asarray(gen.tokens), np.asarray(gen.logprobs)
    gen_lengths = np.asarray(gen.lengths)
    for j, i in enumerate(chunk):
      end = min(gen_lengths[j], max_new_tokens[i])
      drawn.append(Continuation(tokenizer.decode(gen_tokens[j, :end]),
                                float(gen_logprobs[j, :end].sum())))
  per_prompt = [drawn[i * draws:(i + 1) * draws] for i in range(len(prompts))]
  return [continuations * (n // draws) for continuations in per_prompt]


def score(model, tokenizer: Tokenizer, items, *, batch: int = 128,
          progress: bool = True) -> list[Outputs]:
  """Greedy answers, teacher-forced answer log-probs and, for choices, per-choice log-probs."""
  items = list(items)
  prompts = [it.prompt for it in items]
  answers = [it.answer for it in items]
  budgets = [len(ids) + 2 for ids in tokenizer.encode_batch(answers)]
  bar = tqdm(total=3, desc="scoring", disable=not progress, leave=False)
  predictions = greedy_continuations(model, tokenizer, prompts, budgets, batch=batch)
  bar.update()
  logprobs = continuation_logprobs(model, tokenizer, prompts, answers, batch=batch)
  bar.update()
  outputs = [Outputs(p.text, lp, prediction_logprob=p.logprob)
             for p, lp in zip(predictions, logprobs)]
  # Multiple choice: score every choice by its total log-probability after the prompt.
  mc = [(i, c) for i, it in enumerate(items) if it.choices for c in it.choices]
  if mc:
    mc_logprobs = continuation_logprobs(model, tokenizer, [prompts[i] for i, _ in mc],
                                        [c for _, c in mc], batch=batch)
    per_item: dict[int, list[float]] = {}
    for (i, _), lp in zip(mc, mc_logprobs):
      per_item.setdefault(i, []).append(float(lp[:-1].sum()))  # choices end mid-text: no <eos>
    for i, scores in per_item.items():
      outputs[i].choice_logprobs = np.asarray(scores)
  bar.update()
  bar.close()
  return outputs
