"""Sampling a trained codec: held-out utterances through it and back, as WAV files (the
original, then decoded from 1, 2, ... levels) and one spectrogram figure of them."""

from __future__ import annotations

import os

import jax
import numpy as np

from scaling.data import spoken_counting
from scaling.errors import RequestError
from scaling.families import codec as codec_family
from scaling.generate import sound
from scaling.generate.request import SampleRequest


def load_artifacts(workdir: str) -> dict:
  del workdir  # the config says how to remake the data
  return {}


def inference_devices(devices: list) -> list:
  return devices[:1]  # small convolutions: one device


def held_out(cfg) -> spoken_counting.Utterances:
  """The held-out utterances of the run's data."""
  d = cfg.data
  return spoken_counting.load("test", codec_family.data_config(d), d.data_dir or None)


def round_trip(model, clips: list[np.ndarray], levels: int, batch: int = 32
               ) -> list[np.ndarray]:
  """Each clip encoded with its first `levels` levels and decoded, at its own length
  (batches zero-padded to the longest clip, in whole frames: one compilation)."""
  if not clips:
    return []
  length = max(map(len, clips))
  length += -length % model.hop
  through = jax.jit(lambda x_BT: model.decode(model.encode(x_BT, levels)))
  out = []
  for start in range(0, len(clips), batch):
    part = clips[start:start + batch]
    x_BT = np.zeros((batch, length), np.float32)
    for row, clip in enumerate(part):
      x_BT[row, :len(clip)] = clip
    y_BT = np.asarray(through(x_BT))
    out.extend(y_BT[row, :len(clip)] for row, clip in enumerate(part))
  return out


def sample(run, request: SampleRequest) -> list[str]:
  """`n` held-out utterances (default 2), each with its decodings from every level count."""
  if request.prompts:
    raise RequestError("prompts", f"{run.workdir} holds an audio codec: it re-encodes "
                       "held-out speech and takes no {field}")
  request.unset(("classes", "steps", "sampler", "eta", "guidance", "continue_frames",
                 "max_new_tokens"), "is not taken by an audio codec")
  n = request.count(default=2)
  utterances = held_out(run.cfg)
  folder = request.out or os.path.join(run.workdir, "samples")
  levels = range(1, run.cfg.model.n_codebooks + 1)
  lines = []
  for i, clip in enumerate(utterances.audio[:n]):
    words = " ".join(spoken_counting.NUMBER_WORDS[w] for w in utterances.words_NK[i])
    shown = [(f"original: {words!r} ({utterances.voices[i]})", clip)]
    sound.write_wav(os.path.join(folder, f"utterance{i}-original.wav"), clip)
    for q in levels:
      [decoded] = round_trip(run.model, [clip], q, batch=1)
      sound.write_wav(os.path.join(folder, f"utterance{i}-levels{q}.wav"), decoded)
      shown.append((f"decoded from {q} level{'s' * (q > 1)}", decoded))
    figure = os.path.join(folder, f"utterance{i}.png")
    sound.spectrograms(shown, figure)
    lines.append(f"wrote utterance{i}-original.wav, utterance{i}-levels1..{levels[-1]}.wav "
                 f"and {figure}")
  return [*lines, f"in {folder}"]
