"""`scaling tokens`: how many tokens the same text takes in each language, per tokenizer.

Reads the UDHR tarball (scaling.data.udhr), trains BPE on English and on a balanced
multilingual sample of the training articles, measures every language's held-out articles
(scaling.analysis.tokens), and writes `tokens.json` and `parity.png` beside a printed table.
"""

from __future__ import annotations

import os
import sys

from scaling import files
from scaling.analysis import token_plots, tokens
from scaling.analysis.plots import save
from scaling.data import tokenizer as tokenizer_lib
from scaling.data import udhr
from scaling.errors import UserError
from scaling.numbers import fmt
from scaling.rundir import RunDir

# Printed by default: languages of 15 scripts (every language is in tokens.json).
SHOWN = ("eng", "fra", "spa", "vie", "tur", "swh", "yor", "zul", "rus", "ukr", "arb", "heb",
         "hin", "ben", "tam", "tel", "tha", "mya", "khm", "kat", "hye", "cmn_hans", "jpn",
         "kor")


def load_tokenizer(path: str) -> tokens.SentencePiece:
  """A SentencePiece model file, or the one of a run directory."""
  model = RunDir(path).tokenizer if os.path.isdir(path) else path
  if not os.path.isfile(model):
    raise UserError(f"--tokenizer: no SentencePiece model at {model}")
  try:
    tok = tokenizer_lib.Tokenizer.load(model)
  except (OSError, RuntimeError) as e:
    raise UserError(f"--tokenizer: cannot read {model} ({str(e).splitlines()[0]})") from None
  return tokens.SentencePiece(os.path.basename(os.path.normpath(path)), tok, model)


def _shown(languages: str | None, docs: dict) -> list[str]:
  if languages == "all":
    return list(docs)
  codes = [c for c in languages.split(",") if c] if languages else \
      [c for c in SHOWN if c in docs]
  unknown = [c for c in codes if c not in docs]
  if unknown:
    raise UserError(f"--languages: no complete UDHR text for {', '.join(unknown)} (codes are "
                    f"the package's file names, e.g. {', '.join(list(docs)[:4])}; "
                    "tokens.json lists them all)")
  return codes


def _matrix(rows: list[dict], codes: list[str], tokenizers: list[str], key: str,
            digits: int) -> str:
  value = {(r["code"], r["tokenizer"]): r[key] for r in rows}
  names = {r["code"]: (r["name"], r["script"]) for r in rows}
  width = max(10, *(len(t) for t in tokenizers))
  lines = [f"{'language':<28} {'script':<11} " + " ".join(f"{t:>{width}}" for t in tokenizers)]
  for code in codes:
    name, script = names[code]
    lines.append(f"{f'{name} ({code})'[:28]:<28} {script[:11]:<11} " +
                 " ".join(f"{fmt(value[code, t], digits):>{width}}" for t in tokenizers))
  return "\n".join(lines)


def _script_table(script_rows: list[dict], tokenizers: list[str]) -> str:
  median = {(r["script"], r["tokenizer"]): r["median_parity"] for r in script_rows}
  count = {r["script"]: r["languages"] for r in script_rows}
  width = max(10, *(len(t) for t in tokenizers))
  lines = [f"{'script':<14} {'langs':>5} " + " ".join(f"{t:>{width}}" for t in tokenizers)]
  for script in sorted(count, key=lambda s: (-count[s], s)):
    lines.append(f"{script[:14]:<14} {count[script]:>5} " +
                 " ".join(f"{fmt(median[script, t], 3):>{width}}" for t in tokenizers))
  return "\n".join(lines)


def _say(text: str) -> None:
  print(f"tokens: {text}", file=sys.stderr, flush=True)


def run(*, udhr_path: str | None, out: str, vocab_sizes: list[int], chars_per_language: int,
        window: int, extra: list[str], languages: str | None) -> int:
  files.check_writable(os.path.join(out, "tokens.json"), "--out")
  others = [load_tokenizer(p) for p in extra]  # a bad path fails before any work
  tarball = udhr.find_tarball(udhr_path)
  builder = udhr.prepare(tarball)
  train_docs, eval_docs = udhr.documents(builder, "train"), udhr.documents(builder, "eval")
  codes = _shown(languages, eval_docs)
  _say(f"{len(eval_docs)} languages with complete text in {os.path.basename(tarball)}; "
       f"training BPE at vocabulary sizes {', '.join(map(str, vocab_sizes))}")
  counters = [*tokens.train_tokenizers(train_docs, vocab_sizes, chars_per_language), *others,
              tokens.ByteLevel()]
  rows = tokens.measure(counters, eval_docs, window)
  script_rows = tokens.by_script(rows)
  names = [c.name for c in counters]

  os.makedirs(out, exist_ok=True)
  files.write_json(os.path.join(out, "tokens.json"), {
      "source": udhr.info(tarball), "window": window, "languages": len(eval_docs),
      "held_out_chars_english": len(eval_docs[udhr.ENGLISH]["text"]),
      "tokenizers": [{"name": c.name, "vocab_size": c.vocab_size, "trained_on": c.trained_on}
                     for c in counters],
      "by_language": rows, "by_script": script_rows})
  figures = save(token_plots.parity_figure(rows, script_rows, window), out, "parity")

  print("tokenizers: " + "; ".join(f"{c.name} ({c.vocab_size:,} ids, {c.trained_on})"
                                   for c in counters))
  print(f"\nparity: tokens for the same held-out articles over English's\n"
        f"{_matrix(rows, codes, names, 'parity', 3)}")
  print(f"\ncharacters a {window:,}-token window holds\n"
        f"{_matrix(rows, codes, names, 'context_chars', 4)}")
  print(f"\nshare of UTF-8 bytes written as byte-fallback tokens\n"
        f"{_matrix(rows, codes, names, 'byte_fallback_share', 2)}")
  print(f"\nmedian parity per script\n{_script_table(script_rows, names)}")
  print(f"\nwrote {os.path.join(out, 'tokens.json')}, {', '.join(figures)}")
  return 0
