"""Tokenizer parity across languages (Petrov et al. 2023) on the UDHR's parallel text.

For each tokenizer and language, over the same held-out articles: the tokens they take,
parity (those tokens over English's: the cost of saying the same thing), characters per
token, the share of UTF-8 bytes that fell back to byte tokens, and how many characters a
fixed window of tokens holds (the effective context).
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Iterable, Protocol

from scaling.data import tokenizer as tokenizer_lib
from scaling.data.udhr import ENGLISH
from scaling.errors import UserError

# SentencePiece's choice for languages with large character sets: the rarest characters
# of the multilingual sample (0.05% of it) are written as bytes.
MULTILINGUAL_COVERAGE = 0.9995


class Counter(Protocol):
  name: str
  vocab_size: int
  trained_on: str

  def count(self, text: str) -> tuple[int, int]:
    """(tokens, byte-fallback tokens) of `text`."""


@dataclasses.dataclass(frozen=True)
class ByteLevel:
  """One token per UTF-8 byte: the baseline every script can be written in."""
  name: str = "bytes"
  vocab_size: int = 256
  trained_on: str = "-"

  def count(self, text: str) -> tuple[int, int]:
    n = len(text.encode())
    return n, n


@dataclasses.dataclass(frozen=True)
class SentencePiece:
  name: str
  tokenizer: tokenizer_lib.Tokenizer
  trained_on: str

  @property
  def vocab_size(self) -> int:
    return self.tokenizer.vocab_size

  def count(self, text: str) -> tuple[int, int]:
    ids = self.tokenizer.encode(text)
    return len(ids), self.tokenizer.byte_fallbacks(ids)


def training_lines(texts: Iterable[str]) -> list[str]:
  """Texts cut into lines SentencePiece's trainer accepts (it drops over-long ones)."""
  return [line for text in texts for line in tokenizer_lib.training_lines(text)
          if line.strip()]


def balanced_sample(docs: dict[str, dict], chars_per_language: int) -> list[str]:
  """The same number of characters of every language's text (all of it, where shorter)."""
  return [doc["text"][:chars_per_language] for doc in docs.values()]


def _train(lines: list[str], vocab_size: int, what: str, **options) -> tokenizer_lib.Tokenizer:
  try:
    return tokenizer_lib.train(lines, vocab_size, **options)
  except RuntimeError as e:  # the text's characters alone need more ids than `vocab_size`
    reason = str(e).split("] ")[-1].split(". Increase")[0]
    raise UserError(f"--vocab_sizes: {vocab_size} is too small for {what} ({reason})") from None


def train_tokenizers(train_docs: dict[str, dict], vocab_sizes: Iterable[int],
                     chars_per_language: int) -> list[SentencePiece]:
  """BPE on English alone (at most the largest size: its vocabulary stops where its text
  does) and on a balanced multilingual sample at each size."""
  vocab_sizes = sorted(vocab_sizes)
  english = training_lines([train_docs[ENGLISH]["text"]])
  sample = training_lines(balanced_sample(train_docs, chars_per_language))
  out = [SentencePiece("bpe-english", _train(english, vocab_sizes[-1], "the English text"),
                       f"English, {sum(map(len, english)):,} chars")]
  for v in vocab_sizes:
    tok = _train(sample, v, "the multilingual sample",
                 character_coverage=MULTILINGUAL_COVERAGE)
    out.append(SentencePiece(f"bpe-multilingual-{v}", tok,
                             f"{len(train_docs)} languages x {chars_per_language:,} chars"))
  return out


def measure(counters: Iterable[Counter], docs: dict[str, dict], window: int) -> list[dict]:
  """One row per (tokenizer, language); English must be among `docs`."""
  rows = []
  for counter in counters:
    english, _ = counter.count(docs[ENGLISH]["text"])
    for code, doc in docs.items():
      text = doc["text"]
      tokens, fallbacks = counter.count(text)
      n_bytes = len(text.encode())
      rows.append({
          "tokenizer": counter.name, "code": code, "name": doc["name"], "script": doc["script"],
          "chars": len(text), "bytes": n_bytes, "tokens": tokens,
          "parity": tokens / english,
          "chars_per_token": len(text) / tokens,
          "byte_fallback_share": fallbacks / n_bytes,
          "context_chars": window * len(text) / tokens,
      })
  return rows


def by_script(rows: list[dict]) -> list[dict]:
  """Per (tokenizer, script): how many languages, and the median of each measure."""
  groups: dict[tuple[str, str], list[dict]] = {}
  for r in rows:
    groups.setdefault((r["tokenizer"], r["script"]), []).append(r)
  out = []
  for (tok, script), rs in groups.items():
    parity = [r["parity"] for r in rs]
    out.append({"tokenizer": tok, "script": script, "languages": len(rs),
                "median_parity": statistics.median(parity),
                "min_parity": min(parity), "max_parity": max(parity),
                "median_chars_per_token": statistics.median(r["chars_per_token"] for r in rs),
                "median_context_chars": statistics.median(r["context_chars"] for r in rs),
                "mean_byte_fallback_share": statistics.fmean(r["byte_fallback_share"]
                                                             for r in rs)})
  return sorted(out, key=lambda r: (r["tokenizer"], -r["languages"], r["script"]))
