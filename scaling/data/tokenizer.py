"""SentencePiece BPE tokenizer: train from text, save, load, encode, decode.

Digits are always single tokens (`split_digits`), so arithmetic is tokenized one digit at
a time; byte fallback covers any Unicode text; normalisation is the identity and no
whitespace is added or removed, so decode(encode(text)) == text.
"""

from __future__ import annotations

import io
import os
import shutil
from typing import Iterable

import sentencepiece as spm

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3

# SentencePiece's internal whitespace marker. Text that contains it literally is encoded
# around it, with the marker spelled as its three UTF-8 bytes, which decode to itself.
_MARKER = "\u2581"

# Always part of the training text: guarantees a piece for the whitespace marker, which
# byte fallback cannot reproduce (it would decode to a literal U+2581).
_SEED_TEXT = ("a b c", "x y z", "0 1 2 3 4 5 6 7 8 9")


class Tokenizer:
  """A loaded SentencePiece model with the project's reserved ids."""

  def __init__(self, model_proto: bytes):
    self.model_proto = model_proto
    self._sp = spm.SentencePieceProcessor(model_proto=model_proto)
    self._marker_ids = [self._sp.piece_to_id(f"<0x{b:02X}>") for b in _MARKER.encode()]

  @classmethod
  def load(cls, path: str) -> "Tokenizer":
    with open(path, "rb") as f:
      return cls(f.read())

  def save(self, path: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
      f.write(self.model_proto)
    shutil.move(tmp, path)

  @property
  def vocab_size(self) -> int:
    return self._sp.vocab_size()

  def encode(self, text: str) -> list[int]:
    if _MARKER not in text:
      return self._sp.encode(text)
    ids = []
    for i, part in enumerate(text.split(_MARKER)):
      if i:
        ids.extend(self._marker_ids)
      ids.extend(self._sp.encode(part) if part else [])
    return ids

  def encode_batch(self, texts: list[str]) -> list[list[int]]:
    if any(_MARKER in t for t in texts):
      return [self.encode(t) for t in texts]
    return self._sp.encode(texts)

  def decode(self, ids: Iterable[int]) -> str:
    # A model's vocabulary may be larger than the tokenizer's (vocab_size is an upper
    # bound); a sampled id beyond it decodes as <unk> instead of failing.
    size = self.vocab_size
    return self._sp.decode([int(i) if int(i) < size else UNK_ID for i in ids
                            if int(i) not in (PAD_ID, BOS_ID, EOS_ID)])

  def piece_id(self, piece: str) -> int:
    """The id of a piece of the vocabulary (that of <unk> for one it lacks)."""
    return self._sp.piece_to_id(piece)

  def pieces(self, text: str) -> list[str]:
    return self._sp.encode(text, out_type=str)

  def byte_fallbacks(self, ids: Iterable[int]) -> int:
    """How many of `ids` are byte-fallback pieces (`<0x41>`): text the vocabulary lacks."""
    return sum(self._sp.is_byte(int(i)) for i in ids)


def training_lines(text: str, chars: int = 1000):
  """`text` as lines the trainer accepts: it skips sentences over 4192 bytes, and
  1000 characters of any script fit."""
  for line in text.split("\n"):
    for start in range(0, len(line), chars):
      yield line[start:start + chars]


def train(texts: Iterable[str], vocab_size: int, *,
          character_coverage: float = 1.0) -> Tokenizer:
  """Trains a BPE model on `texts`; `vocab_size` is an upper bound on small corpora.

  Characters outside the most frequent `character_coverage` share get no piece of their
  own (byte fallback writes them): below 1 for scripts with thousands of characters."""
  lines = [*_SEED_TEXT, *(t for t in texts if t)]
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(lines),
      model_writer=model,
      model_type="bpe",
      vocab_size=vocab_size,
      hard_vocab_limit=False,
      split_digits=True,
      byte_fallback=True,
      character_coverage=character_coverage,
      normalization_rule_name="identity",
      add_dummy_prefix=False,
      remove_extra_whitespaces=False,
      allow_whitespace_only_pieces=True,
      pad_id=PAD_ID, bos_id=BOS_ID, eos_id=EOS_ID, unk_id=UNK_ID,
      num_threads=1,  # single-threaded training is deterministic
      minloglevel=2,
  )
  return Tokenizer(model.getvalue())


def train_and_save(texts: Iterable[str], vocab_size: int, path: str) -> Tokenizer:
  tok = train(texts, vocab_size)
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  tok.save(path)
  return tok
