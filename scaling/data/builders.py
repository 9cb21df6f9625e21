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

from scaling.errors import ConfigError
from scaling.data import corpora
from scaling.data.locks import default_data_dir, preparing  # noqa: F401  (the module's API)
from scaling.data import tokenizer as tokenizer_lib
from scaling.data.examples import Prepared, read_all
from scaling.data.tasks import mixture

# TFDS logs every prepared split at INFO level; our progress bar says enough. (The
# `scaling` command sets library levels by its --verbosity: kept when stricter.)
if logging.getLogger("absl").getEffectiveLevel() < logging.WARNING:
  logging.getLogger("absl").setLevel(logging.WARNING)
tfds.core.utils.gcs_utils._is_gcs_disabled = True  # No network: never look for GCS mirrors.


@dataclasses.dataclass(kw_only=True)
class TasksConfig(tfds.core.BuilderConfig):
  """The `data` config fields that decide the records (not how they are tokenized)."""
  mixture: tuple = (("arithmetic", 1.0),)
  ops: tuple[str, ...] = ("+",)
  min_digits: int = 1
  max_digits: int = 3
  reverse_answer: bool = False
  letter_levels: tuple[str, ...] = ("basic",)
  word_levels: tuple[str, ...] = ("basic",)
  program_levels: tuple[str, ...] = ("depth1", "depth2", "depth3", "cond")
  program_arities: tuple[int, ...] = (1, 2)
  program_max_chars: int = 64
  eval_fraction: float = 0.02
  num_train: int = 10_000
  num_eval: int = 1_000
  seed: int = 0


class Tasks(tfds.core.GeneratorBasedBuilder):
  """Generated problems: `question`, `answer`, and the `task` and `subset` they belong to."""

  VERSION = tfds.core.Version("1.1.0")  # 1.1.0: eval records interleave tasks
  BUILDER_CONFIGS = []  # Configs are made from run configs, not listed here.

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "question": tfds.features.Text(),
            "answer": tfds.features.Text(),
            "task": tfds.features.Text(),
            "subset": tfds.features.Text(),
        }),
        description="Generated task problems; eval problems are held out by a hash.",
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples("train"), "eval": self._generate_examples("eval")}

  def _generate_examples(self, split):
    c = self.builder_config
    records = (mixture.train_records(c.num_train, seed=c.seed, params=c) if split == "train"
               else mixture.eval_records(c.num_eval, seed=c.seed, params=c))
    for i, r in enumerate(records):
      yield i, dataclasses.asdict(r)


def resolve_data_dir(data_cfg, data_dir: str | None = None) -> str:
  """`data_dir` if given, else the config's `data_dir`, else the toolkit's default."""
  return os.path.expanduser(data_dir or data_cfg.get("data_dir") or default_data_dir())


_PROGRAM_FIELDS = ("program_levels", "program_arities", "program_max_chars")


def _builder_config(data_cfg) -> TasksConfig:
  fields = [f.name for f in dataclasses.fields(TasksConfig)
            if f.name not in {f.name for f in dataclasses.fields(tfds.core.BuilderConfig)}]
  params = {k: data_cfg[k] for k in fields}
  params["mixture"] = tuple((str(name), float(w)) for name, w in params["mixture"])
  # Fields of a task the mixture lacks cannot change its records, so they stay out of the
  # name: a dataset written before those fields existed is found again.
  named = {k: v for k, v in params.items()
           if k not in _PROGRAM_FIELDS or "program" in dict(params["mixture"])}
  digest = hashlib.sha256(json.dumps(named, sort_keys=True).encode()).hexdigest()[:12]
  return TasksConfig(name=f"c{digest}", **params)


def make_builder(data_cfg, data_dir: str | None = None) -> tfds.core.DatasetBuilder:
  """The TFDS builder for a run's `data` config section."""
  return Tasks(config=_builder_config(data_cfg), data_dir=data_dir or default_data_dir(),
               file_format="array_record")


def prepare(data_cfg, data_dir: str | None = None) -> Prepared:
  """Writes the dataset and trains its tokenizer, unless both exist already."""
  data_dir = data_dir or default_data_dir()
  with preparing(data_dir):
    return _prepare(data_cfg, data_dir)


def _prepare(data_cfg, data_dir: str) -> Prepared:
  if corpora.has_text(data_cfg.mixture):
    return corpora.prepare(data_cfg, data_dir or default_data_dir())
  builder = make_builder(data_cfg, data_dir)
  builder.download_and_prepare()
  tok_path = os.path.join(builder.data_dir, "tokenizer.model")
  if os.path.exists(tok_path):
    tok = tokenizer_lib.Tokenizer.load(tok_path)
  else:
    train_source = builder.as_data_source(split="train")
    records = read_all(train_source, limit=20_000)
    texts = (r["question"].decode() + r["answer"].decode() for r in records)
    try:
      tok = tokenizer_lib.train_and_save(texts, data_cfg.vocab_size, tok_path)
    except RuntimeError as e:  # SentencePiece reports a too-small vocabulary this way.
      raise ConfigError(f"config.data.vocab_size: {str(e).split('] ')[-1]}") from None
  if tok.vocab_size > data_cfg.vocab_size:
    raise ConfigError(f"config.data.vocab_size: the tokenizer needs {tok.vocab_size} ids, "
                      f"more than {data_cfg.vocab_size}")
  sources = {split: builder.as_data_source(split=split) for split in ("train", "eval")}
  return Prepared(sources, tok, builder.data_dir)
