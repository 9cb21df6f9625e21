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

from scaling.errors import ConfigError
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


# A task example goes into the first of this many open rows it fits in: at seq_len 32 the
# task mixture's rows carry 1.55 examples rather than 1.41 filled strictly in order.
OPEN_ROWS = 8


class _Row:
  """One row being filled."""

  def __init__(self, seq_len: int):
    self.arrays = {k: np.zeros(seq_len, np.float32 if k == "loss_mask" else np.int32)
                   for k in FIELDS}
    self.used, self.segments, self.free = 0, 0, seq_len

  def add(self, doc: Document, start: int, take: int) -> None:
    """Pairs `start:start + take` of `doc` as the row's next segment."""
    self.segments += 1
    piece = slice(self.used, self.used + take)
    self.arrays["inputs"][piece] = doc.tokens[start:start + take]
    self.arrays["targets"][piece] = doc.tokens[start + 1:start + 1 + take]
    self.arrays["loss_mask"][piece] = doc.loss_mask[start:start + take]
    self.arrays["segment_ids"][piece] = self.segments
    self.arrays["positions"][piece] = np.arange(take)
    self.used, self.free = self.used + take, self.free - take


def pack(documents: Iterable[Document], seq_len: int,
         open_rows: int = 1) -> Iterator[dict[str, np.ndarray]]:
  """Rows of `seq_len` pairs; the last rows are padded.

  Text continues in the newest row. A whole document goes into the first of up to
  `open_rows` rows with room for it, else into a new row (the oldest is then closed):
  deterministic, and with `open_rows=1` strictly in document order.
  """
  rows: list[_Row] = []  # open rows, oldest first
  for doc in documents:
    n = len(doc)
    if doc.whole:
      if n > seq_len:
        raise ConfigError(f"config.data.seq_len: an example needs {n} positions, "
                          f"more than seq_len={seq_len}")
      row = next((r for r in rows if r.free >= n), None)
      if row is None:
        if len(rows) == open_rows:
          yield rows.pop(0).arrays
        row = _Row(seq_len)
        rows.append(row)
      row.add(doc, 0, n)
      if not row.free:
        rows.remove(row)
        yield row.arrays
      continue
    start = 0
    while start < n:
      if not rows or not rows[-1].free:
        if len(rows) == open_rows:
          yield rows.pop(0).arrays
        rows.append(_Row(seq_len))
      row = rows[-1]
      take = min(n - start, row.free)
      row.add(doc, start, take)
      start += take
      if not row.free:
        rows.remove(row)
        yield row.arrays
  for row in rows:
    if row.used:
      yield row.arrays


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
