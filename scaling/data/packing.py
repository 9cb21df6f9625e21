"""Sequence packing: documents into fixed-length rows with segment ids and positions.

A document `<bos> t1 ... tn <eos>` is n + 1 (input, target) pairs; the pairs of
consecutive documents fill rows of `seq_len`. Each piece of a document in a row has its
own segment id (1, 2, ... within the row; 0 is padding) and positions counting from 0,
so with the model's segment mask a piece is computed exactly as if it were alone.
Text may be cut at a row's end and continue in the next row, so no token is wasted or
repeated; a task example is `whole` (its answer means nothing without its question) and
starts a new row when it does not fit in the current one.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Iterator, Sequence

import numpy as np

from scaling.config import ConfigError
from scaling.data.tokenizer import BOS_ID, EOS_ID

FIELDS = ("inputs", "targets", "loss_mask", "segment_ids", "positions")


@dataclasses.dataclass(frozen=True)
class Document:
  """`tokens` (int32, with <bos> and <eos>) and which of its len - 1 targets count."""

  tokens: np.ndarray
  loss_mask: np.ndarray
  whole: bool = False

  def __len__(self) -> int:
    return len(self.tokens) - 1


def text_document(ids: Sequence[int]) -> Document:
  """Natural text: every target, <eos> included, is trained on."""
  tokens = np.asarray([BOS_ID, *ids, EOS_ID], np.int32)
  return Document(tokens, np.ones(len(tokens) - 1, np.float32))


def task_document(question: Sequence[int], answer: Sequence[int], loss_on: str) -> Document:
  """A task example, laid out as `pipeline.tokenize` lays it out; never cut."""
  tokens = np.asarray([BOS_ID, *question, *answer, EOS_ID], np.int32)
  mask = np.zeros(len(tokens) - 1, np.float32)
  mask[0 if loss_on == "all" else len(question):] = 1.0  # target j predicts token j + 1
  return Document(tokens, mask, whole=True)


def _empty_row(seq_len: int) -> dict[str, np.ndarray]:
  return {k: np.zeros(seq_len, np.float32 if k == "loss_mask" else np.int32) for k in FIELDS}


def pack(documents: Iterable[Document], seq_len: int) -> Iterator[dict[str, np.ndarray]]:
  """Rows of `seq_len` pairs, in document order; the last row is padded."""
  row, used, segment = _empty_row(seq_len), 0, 0
  for doc in documents:
    n = len(doc)
    if doc.whole and n > seq_len:
      raise ConfigError(f"config.data.seq_len: an example needs {n} positions, "
                        f"more than seq_len={seq_len}")
    if doc.whole and used + n > seq_len:
      yield row
      row, used, segment = _empty_row(seq_len), 0, 0
    start = 0
    while start < n:
      take = min(n - start, seq_len - used)
      segment += 1
      piece = slice(used, used + take)
      row["inputs"][piece] = doc.tokens[start:start + take]
      row["targets"][piece] = doc.tokens[start + 1:start + 1 + take]
      row["loss_mask"][piece] = doc.loss_mask[start:start + take]
      row["segment_ids"][piece] = segment
      row["positions"][piece] = np.arange(take)
      used, start = used + take, start + take
      if used == seq_len:
        yield row
        row, used, segment = _empty_row(seq_len), 0, 0
  if used:
    yield row


def mix(streams: Sequence[Iterator[Document]], weights: Sequence[float]) -> Iterator[Document]:
  """Interleaves document streams so that each one's share of tokens follows its weight.

  The next document always comes from the stream furthest below its share (fewest
  tokens per unit of weight so far, ties to the first): deterministic, and exact to
  within one document. A stream that ends drops out; the mix ends with the last one.
  """
  weights = np.asarray(weights, np.float64)
  tokens = np.zeros(len(streams))
  live = np.ones(len(streams), bool)
  while live.any():
    i = int(np.argmin(np.where(live, tokens / weights, np.inf)))
    doc = next(streams[i], None)
    if doc is None:
      live[i] = False
      continue
    tokens[i] += len(doc)
    yield doc
