"""Generated captions of digit images, as byte tokens, for the contrastive family.

Each digit has captions of five kinds (templates): its word ("a handwritten seven"), its
numeral ("7"), a successor ("the number after six"), a sum ("two plus five") and a
difference ("nine minus two"), the last two needing one arithmetic step. Those are split
by a fixed hash: training captions use some (a, b) pairs and the held-out ones the
others, so accuracy on them asks for the arithmetic, not a memorised phrase.

Tokens: PAD 0, BOS 1, EOS 2, then byte b as id b + 4 (captions are ASCII). A caption is
<s> bytes </s>, right-padded; the text tower reads its last token, </s>.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from scaling.data.tasks import splits
from scaling.data.tokenizer import BOS_ID, EOS_ID, PAD_ID

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEMPLATES = ("word", "digit", "successor", "sum", "difference")
ARITHMETIC = ("sum", "difference")  # split by hash into trained and held-out captions
VOCAB_SIZE = 256 + 4
BYTE_OFFSET = 4
# The share of (a, b) sums held out; decided by hash, as the arithmetic task's problems are.
EVAL_FRACTION = 0.3


def captions(label: int, template: str) -> list[str]:
  """Every caption of `template` that describes the digit `label`."""
  if template == "word":
    return [f"a handwritten {WORDS[label]}"]
  if template == "digit":
    return [str(label)]
  if template == "successor":
    return [f"the number after {WORDS[label - 1]}"] if label > 0 else [
        f"the number before {WORDS[label + 1]}"]
  if template == "sum":
    return [f"{WORDS[a]} plus {WORDS[label - a]}" for a in range(label + 1)]
  if template == "difference":
    return [f"{WORDS[a]} minus {WORDS[a - label]}" for a in range(label, len(WORDS))]
  raise ValueError(f"unknown caption template {template!r}; known: {', '.join(TEMPLATES)}")


def held_out(caption: str) -> bool:
  """Whether an arithmetic caption belongs to the held-out split (other templates are in
  both)."""
  arithmetic = " plus " in caption or " minus " in caption
  return arithmetic and splits.in_eval_split(caption, EVAL_FRACTION)


def encode(texts: list[str], length: int) -> np.ndarray:
  """[N, length] int32 token ids: <s> bytes </s> then padding."""
  out = np.full((len(texts), length), PAD_ID, np.int32)
  for i, text in enumerate(texts):
    ids = [BOS_ID, *(b + BYTE_OFFSET for b in text.encode("ascii")), EOS_ID]
    if len(ids) > length:
      raise ValueError(f"caption {text!r} needs {len(ids)} tokens; text_length is {length}")
    out[i, :len(ids)] = ids
  return out


def max_tokens(num_classes: int) -> int:
  """The longest caption of any template, in tokens with <s> and </s>."""
  return max(len(c) + 2 for label in range(num_classes) for t in TEMPLATES
             for c in captions(label, t))


@dataclasses.dataclass(frozen=True)
class CaptionTable:
  """Captions of one split: their tokens [C, T], the digit each describes and its template."""
  texts: tuple[str, ...]
  tokens_CT: np.ndarray
  labels_C: np.ndarray
  templates_C: np.ndarray  # index into TEMPLATES


@functools.lru_cache(maxsize=8)
def table(split: str, num_classes: int, length: int) -> CaptionTable:
  """The captions of `split` ("train" or "eval"): every template's, with the sums of that
  split only."""
  texts, labels, kinds = [], [], []
  for label in range(num_classes):
    for k, template in enumerate(TEMPLATES):
      for caption in captions(label, template):
        if template in ARITHMETIC and held_out(caption) != (split == "eval"):
          continue
        texts.append(caption)
        labels.append(label)
        kinds.append(k)
  return CaptionTable(tuple(texts), encode(texts, length), np.asarray(labels, np.int32),
                      np.asarray(kinds, np.int32))
