"""Text in, text out: tokenize prompts, generate with a run's model, detokenize.

`run` is a loaded run (`scaling.runs.Run`): its model, tokenizer and context length.
"""

from __future__ import annotations

import numpy as np

from scaling.errors import UserError
from scaling.data.tokenizer import BOS_ID, EOS_ID
from scaling.generate import decode, sampling


def encode_prompts(run, prompts: list[str], max_new_tokens: int | None):
  """Right-padded token ids (with <bos>), their lengths, and the continuation budget."""
  if not prompts:
    raise UserError("no prompt given")
  encoded = []
  for prompt in prompts:
    if not prompt:
      raise UserError("empty prompt: give at least one character")
    try:
      prompt.encode("utf-8")
    except UnicodeEncodeError:  # bytes that were not UTF-8 reach Python as surrogates
      raise UserError(f"prompt {prompt[:40]!r} is not valid UTF-8 text") from None
    ids = [BOS_ID, *run.tokenizer.encode(prompt)]
    if len(ids) >= run.context:
      raise UserError(f"prompt {prompt[:40]!r} is {len(ids)} tokens with <bos>; the model's "
                      f"context is {run.context}, which leaves no room to generate")
    encoded.append(ids)
  longest = max(map(len, encoded))
  room = run.context - longest
  if max_new_tokens is None:
    max_new_tokens = room
  if not 0 < max_new_tokens <= room:
    raise UserError(f"max_new_tokens must be in [1, {room}] for these prompts "
                    f"(context {run.context}), got {max_new_tokens}")
  tokens = np.zeros((len(encoded), longest), np.int32)
  for i, ids in enumerate(encoded):
    tokens[i, :len(ids)] = ids
  return tokens, np.array([len(ids) for ids in encoded]), max_new_tokens


def complete(run, prompts: list[str], *, n: int = 1,
             cfg: sampling.SamplingConfig = sampling.SamplingConfig(temperature=0.0),
             max_new_tokens: int | None = None, seed: int = 0) -> list[list[str]]:
  """`n` completions of each prompt (the text after the prompt, up to <eos>)."""
  try:
    cfg.validate()
  except ValueError as e:
    raise UserError(str(e)) from None
  if n < 1:
    raise UserError(f"n must be at least 1, got {n}")
  tokens, lengths, max_new_tokens = encode_prompts(run, prompts, max_new_tokens)
  out = decode.generate(run.model, np.repeat(tokens, n, axis=0), np.repeat(lengths, n),
                        max_new_tokens=max_new_tokens, cfg=cfg, stop_tokens=(EOS_ID,),
                        seed=seed)
  generated, counts = np.asarray(out.tokens), np.asarray(out.lengths)
  texts = [run.tokenizer.decode(row[:count]) for row, count in zip(generated, counts)]
  return [texts[i * n:(i + 1) * n] for i in range(len(prompts))]
