"""TFDS builders over the task generators, written as array_record (no TensorFlow).

A prepared dataset lives under `<data_dir>/<builder>/<config name>/<version>`, where the
config name is a hash of the task's parameters, so every run with the same data config
(every model of a sweep, whatever its size) reads the same files. The tokenizer trained
on that data is stored beside it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os

import tensorflow_datasets as tfds

from scaling.config import ConfigError
from scaling.data import tokenizer as tokenizer_lib
from scaling.data.tasks import arithmetic

# TFDS logs every prepared split at INFO level; our progress bar says enough.
logging.getLogger("absl").setLevel(logging.WARNING)
tfds.core.utils.gcs_utils._is_gcs_disabled = True  # No network: never look for GCS mirrors.


@dataclasses.dataclass(kw_only=True)
class ArithmeticConfig(tfds.core.BuilderConfig):
  ops: tuple[str, ...] = ("+",)
  min_digits: int = 1
  max_digits: int = 3
  reverse_answer: bool = False
  eval_fraction: float = 0.02
  num_train: int = 10_000
  num_eval: int = 1_000
  seed: int = 0


class Arithmetic(tfds.core.GeneratorBasedBuilder):
  """Generated arithmetic problems with `question` and `answer` text fields."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = []  # Configs are made from run configs, not listed here.

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "question": tfds.features.Text(),
            "answer": tfds.features.Text(),
        }),
        description="Generated arithmetic problems; eval problems are hash-held-out.",
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples("train"), "eval": self._generate_examples("eval")}

  def _generate_examples(self, split):
    c = self.builder_config
    n = c.num_train if split == "train" else c.num_eval
    problems = arithmetic.generate(split, n, seed=c.seed, ops=tuple(c.ops),
                                   min_digits=c.min_digits, max_digits=c.max_digits,
                                   eval_fraction=c.eval_fraction)
    for i, p in enumerate(problems):
      yield i, {"question": p.question, "answer": p.answer(c.reverse_answer)}


def default_data_dir() -> str:
  return os.environ.get("SCALING_DATA_DIR") or os.path.expanduser("~/.cache/scaling/data")


def _builder_config(data_cfg) -> ArithmeticConfig:
  params = dict(ops=tuple(data_cfg.ops), min_digits=data_cfg.min_digits,
                max_digits=data_cfg.max_digits, reverse_answer=data_cfg.reverse_answer,
                eval_fraction=data_cfg.eval_fraction, num_train=data_cfg.num_train,
                num_eval=data_cfg.num_eval, seed=data_cfg.get("seed", 0))
  digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
  return ArithmeticConfig(name=f"c{digest}", **params)


def make_builder(data_cfg, data_dir: str | None = None) -> tfds.core.DatasetBuilder:
  """The TFDS builder for a run's `data` config section."""
  if data_cfg.task != "arithmetic":
    raise ConfigError(f"config.data.task: unknown task {data_cfg.task!r}; known: arithmetic")
  return Arithmetic(config=_builder_config(data_cfg), data_dir=data_dir or default_data_dir(),
                    file_format="array_record")


@dataclasses.dataclass
class Prepared:
  """A written dataset: its splits as random-access sources, its tokenizer, its folder."""
  sources: dict
  tokenizer: tokenizer_lib.Tokenizer
  directory: str


def prepare(data_cfg, data_dir: str | None = None) -> Prepared:
  """Writes the dataset and trains its tokenizer, unless both exist already."""
  builder = make_builder(data_cfg, data_dir)
  builder.download_and_prepare()
  tok_path = os.path.join(builder.data_dir, "tokenizer.model")
  if os.path.exists(tok_path):
    tok = tokenizer_lib.Tokenizer.load(tok_path)
  else:
    train_source = builder.as_data_source(split="train")
    records = read_all(train_source, limit=20_000)
    texts = (r["question"].decode() + r["answer"].decode() for r in records)
    tok = tokenizer_lib.train_and_save(texts, data_cfg.vocab_size, tok_path)
  if tok.vocab_size > data_cfg.vocab_size:
    raise ConfigError(f"config.data.vocab_size: the tokenizer needs {tok.vocab_size} ids, "
                      f"more than {data_cfg.vocab_size}")
  sources = {split: builder.as_data_source(split=split) for split in ("train", "eval")}
  return Prepared(sources, tok, builder.data_dir)


def read_all(source, limit: int | None = None, chunk: int = 10_000) -> list[dict]:
  """Reads records in chunks: batched reads are ~15x faster than one at a time."""
  n = len(source) if limit is None else min(len(source), limit)
  out = []
  for start in range(0, n, chunk):
    out.extend(source.__getitems__(list(range(start, min(start + chunk, n)))))
  return out
