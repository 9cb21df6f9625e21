"""The data every stage below the model shares: tokenized splits and prepared datasets.

`Examples` holds a split as arrays (rows of `seq_len` tokens); `Prepared` is a written
dataset (its sources, tokenizer and folder), as the task builders and the text corpora
return it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from scaling.data import tokenizer as tokenizer_lib

FIELDS = ("inputs", "targets", "loss_mask")
PACKED_FIELDS = (*FIELDS, "segment_ids", "positions")


@dataclasses.dataclass(frozen=True)
class Examples:
  """A tokenized split: `inputs`, `targets` (int32) and `loss_mask` (float32), [N, L].

  Packed rows (`scaling.data.packing`) also have `segment_ids` (0 = padding) and
  `positions` within each document, which the model uses to keep documents apart.
  """

  inputs: np.ndarray
  targets: np.ndarray
  loss_mask: np.ndarray
  segment_ids: np.ndarray | None = None
  positions: np.ndarray | None = None

  def __len__(self) -> int:
    return len(self.inputs)

  def rows(self, index) -> dict[str, np.ndarray]:
    fields = FIELDS if self.segment_ids is None else PACKED_FIELDS
    # np.asarray: rows of a memory-mapped split become ordinary arrays.
    return {k: np.asarray(getattr(self, k)[index]) for k in fields}


@dataclasses.dataclass
class Prepared:
  """A written dataset: its splits as random-access sources, its tokenizer, its folder.

  Text mixtures come already tokenized and packed: `splits` holds their `Examples`.
  """
  sources: dict
  tokenizer: tokenizer_lib.Tokenizer
  directory: str
  splits: dict | None = None


def read_all(source, limit: int | None = None, chunk: int = 10_000) -> list[dict]:
  """Reads records in chunks: batched reads are ~15x faster than one at a time."""
  n = len(source) if limit is None else min(len(source), limit)
  out = []
  for start in range(0, n, chunk):
    out.extend(source.__getitems__(list(range(start, min(start + chunk, n)))))
  return out
