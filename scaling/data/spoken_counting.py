"""Spoken counting: utterances such as "three, four, five, six", made offline by espeak-ng
(`scaling.data.speech`) in many voices at 16 kHz.

A speaker is an espeak-ng English voice and variant at one pitch and speed; the data seed
picks `n_speakers` of them. Each speaker says every number word once, and an utterance joins
`length` consecutive number words of one speaker with a fixed pause, so every word's span
in the audio is known exactly (the judge of a spoken continuation needs it). Speakers are
held out by a hash of their settings: no held-out voice is ever heard in training. The
utterances are written once as array_record and follow from the config alone.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import tensorflow_datasets as tfds

from scaling.data import builders
from scaling.data.examples import read_all
from scaling.data.speech import SAMPLE_RATE, Voice, espeak_binary, speak
from scaling.data.tasks import splits

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen",
                "sixteen", "seventeen", "eighteen", "nineteen", "twenty")
# espeak-ng's own English voices (no MBROLA), its variants, and a few pitches and speeds.
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
          "en-gb-x-gbcwmd", "en-029")
VARIANTS = ("m1", "m2", "m3", "m4", "m7", "f1", "f2", "f3", "f4", "klatt")
PITCHES = (30, 45, 60, 75)
SPEEDS = (140, 165, 190)
EVAL_FRACTION = 0.2  # of the speakers, by hash
PAUSE_S = 0.15


def speakers(n: int, seed: int) -> list[Voice]:
  """`n` distinct speakers, drawn by the data seed from every voice setting."""
  every = [Voice(*s) for s in itertools.product(VOICES, VARIANTS, PITCHES, SPEEDS)]
  if not 1 <= n <= len(every):
    raise ValueError(f"n_speakers must be in [1, {len(every)}], got {n}")
  rng = np.random.default_rng([seed, 53])
  return [every[i] for i in sorted(rng.choice(len(every), n, replace=False))]


def held_out(voice: Voice) -> bool:
  return splits.in_eval_split(voice.key(), EVAL_FRACTION)


def split_speakers(n: int, seed: int, split: str) -> list[Voice]:
  """The speakers of `split` ("train" or "test"); each split gets at least one."""
  chosen = speakers(n, seed)
  test = [v for v in chosen if held_out(v)] or chosen[-1:]
  return test if split == "test" else [v for v in chosen if v not in test]


def utterance(voice: Voice, words: list[int]) -> tuple[np.ndarray, np.ndarray]:
  """The words said by `voice`, a pause between them: float32 samples and the
  [len(words), 2] start and end sample of each word."""
  pause = np.zeros(int(PAUSE_S * SAMPLE_RATE), np.float32)
  pieces, spans, at = [], [], 0
  for i, word in enumerate(words):
    if i:
      pieces.append(pause)
      at += len(pause)
    audio = speak(NUMBER_WORDS[word], voice)
    pieces.append(audio)
    spans.append((at, at + len(audio)))
    at += len(audio)
  return np.concatenate(pieces), np.array(spans, np.int32)


@dataclasses.dataclass(kw_only=True)
class SpokenCountingConfig(tfds.core.BuilderConfig):
  n_speakers: int = 64
  length: int = 4            # number words per utterance
  num_train: int = 2048
  num_test: int = 256
  seed: int = 0


class SpokenCounting(tfds.core.GeneratorBasedBuilder):
  """Counting utterances: `audio` int16 at 16 kHz, each word's class and span, the voice."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = []  # Configs are made from run configs, not listed here.

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "audio": tfds.features.Tensor(shape=(None,), dtype=np.int16),
            "words": tfds.features.Tensor(shape=(c.length,), dtype=np.int32),
            "spans": tfds.features.Tensor(shape=(c.length, 2), dtype=np.int32),
            "voice": tfds.features.Text(),
            "index": tfds.features.Scalar(dtype=np.int32),
        }),
        description="Spoken counting made by espeak-ng (see scaling.data.spoken_counting).",
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: self._generate_examples(split) for split in ("train", "test")}

  def _generate_examples(self, split):
    c = self.builder_config
    voices = split_speakers(c.n_speakers, c.seed, split)
    n = c.num_train if split == "train" else c.num_test
    rng = np.random.default_rng([c.seed, split == "test", 59])
    for i in range(n):
      voice = voices[rng.integers(len(voices))]
      start = int(rng.integers(len(NUMBER_WORDS) - c.length + 1))
      words = list(range(start, start + c.length))
      audio, spans = utterance(voice, words)
      yield i, {"audio": np.round(audio * 32767).astype(np.int16),
                "words": np.array(words, np.int32), "spans": spans, "voice": voice.key(),
                "index": i}


@dataclasses.dataclass(frozen=True)
class Utterances:
  """A split as arrays: float32 audio per utterance (ragged), words, spans and voices."""
  audio: list[np.ndarray]
  words_NK: np.ndarray
  spans_NK2: np.ndarray
  voices: list[str]

  def __len__(self) -> int:
    return len(self.audio)


def config_for(*, n_speakers: int, length: int, num_train: int, num_test: int,
               seed: int) -> SpokenCountingConfig:
  """The builder config of these utterances, named by their fields."""
  fields = dict(n_speakers=n_speakers, length=length, num_train=num_train,
                num_test=num_test, seed=seed)
  name = "-".join(f"{k}{v}" for k, v in fields.items()).replace("_", "")
  return SpokenCountingConfig(name=name, **fields)


def load(split: str, config: SpokenCountingConfig, data_dir: str | None = None) -> Utterances:
  """A split ("train" or "test"), spoken and written on first use."""
  if split not in ("train", "test"):
    raise ValueError(f"split must be train or test, got {split!r}")
  data_dir = data_dir or builders.default_data_dir()
  with builders.preparing(data_dir):
    builder = SpokenCounting(config=config, data_dir=data_dir, file_format="array_record")
    if not builder.is_prepared():
      espeak_binary()  # one error line naming the package, before anything is written
    builder.download_and_prepare()
  records = sorted(read_all(builder.as_data_source(split=split)), key=lambda r: r["index"])
  voice = lambda r: r["voice"].decode() if isinstance(r["voice"], bytes) else r["voice"]
  return Utterances([r["audio"].astype(np.float32) / 32767 for r in records],
                    np.stack([r["words"] for r in records]),
                    np.stack([r["spans"] for r in records]),
                    [voice(r) for r in records])
