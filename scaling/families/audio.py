"""The audio family: the language model (`scaling.models.lm`) over a trained codec's tokens
of spoken counting (`scaling.data.audio_tokens`).

It is the LM family with speech for data: a codec run (`data.codec`, kind `codec`) turns
every utterance into codes once (cached beside the codec), flattened level by level into
one sequence; the model learns next-token prediction on every token, samples with the
same samplers and decodes back to a waveform through the codec. Costs are counted per
token.
"""

from __future__ import annotations

import os

import ml_collections

from scaling import files
from scaling.config import require
from scaling.data import audio_tokens, spoken_counting
from scaling.errors import ConfigError, UserError
from scaling.families import codec as codec_family, lm

CODEC_LINK = "codec.json"  # in an audio run: which codec run its tokens are of


def base_config() -> ml_collections.ConfigDict:
  """Every field of an audio config with its default (the LM's ~117k-parameter model on
  2 codebooks of a 64-code codec: 130 tokens); presets in `configs/audio/` start here."""
  cfg = lm.base_config()
  cfg.name = "audio"
  cfg.model.kind = "audio"
  cfg.data = ml_collections.ConfigDict(dict(
      kind="speech",
      name="spoken_counting",
      codec="",                # a trained codec run directory (required)
      levels=2,                # RVQ levels per frame the model reads (<= the codec's)
      codebook_size=64,        # the codec's; checked when its tokens are read
      n_speakers=200,
      length=4,                # number words per utterance
      num_train=4096,          # TFDS shuffles a split in memory up to 1 GB (no TensorFlow)
      num_test=512,
      seq_len=384,             # at least the longest utterance's tokens (checked)
      vocab_size=audio_tokens.vocab_size(2, 64),  # <pad>, <bos>, then levels x codes
      data_dir="",
      seed=0,
  ))
  cfg.train.update(steps=2_000, batch_size=32, learning_rate=3e-3, weight_decay=0.1)
  cfg.eval.update(every_steps=500, batch_size=64, max_examples=256)
  return cfg


def check_data(d) -> None:
  codec_family.check_speech(d)
  require(d.levels >= 1, "data.levels", f"must be at least 1, got {d.levels}")
  require(d.codebook_size >= 2, "data.codebook_size", f"must be at least 2, got "
          f"{d.codebook_size}")
  require(d.vocab_size == audio_tokens.vocab_size(d.levels, d.codebook_size),
          "data.vocab_size", f"must be 2 + levels x codebook_size = "
          f"{audio_tokens.vocab_size(d.levels, d.codebook_size)}, got {d.vocab_size}")
  require(d.seq_len > 1, "data.seq_len", f"must be at least 2, got {d.seq_len}")


def open_codec(d):
  """The codec run `data.codec` names, checked against the data section."""
  require(bool(d.codec), "data.codec", "give the codec run directory the tokens come from "
          "(train one with configs/audio/codec.py)")
  try:
    run = codec_family.load_codec(os.path.abspath(d.codec))
  except UserError as e:
    raise ConfigError(f"config.data.codec: {e}") from None
  m = run.cfg.model
  require(d.levels <= m.n_codebooks, "data.levels",
          f"{d.levels} levels, but the codec has {m.n_codebooks}")
  require(d.codebook_size == m.codebook_size, "data.codebook_size",
          f"{d.codebook_size}, but the codec's codebooks have {m.codebook_size} codes")
  return run


def utterance_codes(d, split: str) -> tuple[spoken_counting.Utterances, list]:
  """A split's utterances and their codes (cached beside the codec)."""
  config = codec_family.data_config(d)
  utterances = spoken_counting.load(split, config, d.data_dir or None)
  codes = audio_tokens.cached_codes(open_codec(d), f"{config.name}-{split}",
                                    utterances.audio, d.levels)
  return utterances, codes


class AudioFamily(lm.LMFamily):
  """Next-token prediction on codec tokens of speech; costs counted per token."""

  kind = "audio"
  base_config = staticmethod(base_config)

  def check(self) -> None:
    self.check_model()
    check_data(self.cfg.data)

  def load_data(self) -> dict:
    d = self.cfg.data
    splits = {}
    for split, name in (("train", "train"), ("eval", "test")):
      _, codes = utterance_codes(d, name)
      try:
        splits[split] = audio_tokens.examples(codes, d.codebook_size, d.seq_len)
      except ValueError as e:
        raise ConfigError(f"config.data.seq_len: {e}") from None
    return splits

  def save_artifacts(self, data: dict, workdir: str) -> None:
    del data
    files.write_json(os.path.join(workdir, CODEC_LINK),
                     {"codec": os.path.abspath(self.cfg.data.codec)})
