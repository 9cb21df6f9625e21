"""Evaluating a trained codec on held-out speakers' utterances.

Suite `quality` (default), per number of levels q = 1..Q the codec decodes from:
`si_snr` (dB, scale-invariant SNR of the waveform), `mel_distance` (mean absolute
difference of log-mel features), `spectral_distance` (the training loss's spectral part),
each a mean over utterances with a bootstrap interval, and the rate: `tokens_per_second`
and `bitrate` (bits a second). Task `usage`, per level: `perplexity` of the codes over all
held-out frames (K when every code is used equally) and `dead` (the share never used).
Suite `recogniser`: trains the number-word recogniser on the codec's decodings of the
training utterances' words, keeps it beside the run (`recogniser.npz`, which the audio
family's spoken-counting eval judges with) and reports its `accuracy` on held-out
speakers' words, decoded and clean.
"""

from __future__ import annotations

import math
import os

import numpy as np

from scaling.data import audio_tokens, spoken_counting
from scaling.data.speech import SAMPLE_RATE
from scaling.errors import RequestError
from scaling.evals import aggregate, metrics, spoken_words
from scaling.evals.request import EvalRequest
from scaling.families import codec as codec_family
from scaling.generate import codec as codec_sampling
from scaling.models import rvq, spectra

SUITES = ("quality", "recogniser")
DEFAULT_N = 128  # held-out utterances when -n is not given
RECOGNISER = "recogniser.npz"


def check(cfg, request: EvalRequest) -> None:
  del cfg
  request.check()
  request.unset(("task_files", "samplers", "steps", "guidance"), "is not taken by a codec")
  for name in request.suites or ():
    if name not in SUITES:
      raise RequestError("suites", f"unknown suite {name!r} for a codec; known: "
                         f"{', '.join(SUITES)}")


def _point(value: float, n: int) -> dict:
  """A number measured once, not a mean over items: it has no interval."""
  return {"mean": float(value), "ci_low": None, "ci_high": None, "n": n}


def clip_scores(original: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
  """SI-SNR, log-mel and spectral distance of one decoded clip against its original."""
  x, y = original[None], decoded[None]
  return {"si_snr": float(spectra.si_snr(x, y)[0]),
          "mel_distance": float(np.mean(np.abs(spectra.log_mel(x, SAMPLE_RATE)
                                               - spectra.log_mel(y, SAMPLE_RATE)))),
          "spectral_distance": float(spectra.spectral_loss(x, y))}


def quality(run, clips: list[np.ndarray], batch: int) -> dict:
  """The `reconstruction` and `usage` tasks over these clips."""
  m = run.cfg.model
  frames_per_second = SAMPLE_RATE / math.prod(m.strides)
  out = {"reconstruction": {}, "usage": {}}
  for q in range(1, m.n_codebooks + 1):
    decoded = codec_sampling.round_trip(run.model, clips, q, batch)
    scores = [clip_scores(a, b) for a, b in zip(clips, decoded)]
    table = {name: metrics.summarize([s[name] for s in scores]) for name in scores[0]}
    table["tokens_per_second"] = _point(q * frames_per_second, len(clips))
    table["bitrate"] = _point(q * frames_per_second * math.log2(m.codebook_size), len(clips))
    out["reconstruction"][f"levels{q}"] = {"n": len(clips), "metrics": table}
  codes = audio_tokens.encode_audio(run, clips, m.n_codebooks, batch)
  use = rvq.usage(np.concatenate(codes), m.codebook_size)
  frames = sum(map(len, codes))
  for q in range(m.n_codebooks):
    out["usage"][f"level{q + 1}"] = {"n": frames, "metrics": {
        "perplexity": _point(use["perplexity"][q], frames),
        "dead": _point(use["dead"][q], frames)}}
  return out


def words(utterances: spoken_counting.Utterances, audio: list[np.ndarray]):
  """Every word clip of these utterances (cut from `audio`, their decodings or the
  originals, at the words' spans) and its label."""
  clips, labels = [], []
  for clip, words_K, spans_K2 in zip(audio, utterances.words_NK, utterances.spans_NK2):
    for word, (start, end) in zip(words_K, spans_K2):
      clips.append(clip[start:end])
      labels.append(word)
  return clips, np.array(labels)


def train_recogniser(run, batch: int = 32, progress: bool = True):
  """The recogniser fitted to the codec's decodings of the training words (all levels),
  saved beside the run; returns it."""
  d = run.cfg.data
  train = spoken_counting.load("train", codec_family.data_config(d), d.data_dir or None)
  decoded = codec_sampling.round_trip(run.model, train.audio, run.cfg.model.n_codebooks, batch)
  recogniser = spoken_words.train(*words(train, decoded), seed=run.cfg.seed,
                                  progress=progress)
  spoken_words.save(recogniser, os.path.join(run.workdir, RECOGNISER))
  return recogniser


def recogniser_accuracy(run, recogniser, utterances, batch: int) -> dict:
  decoded = codec_sampling.round_trip(run.model, utterances.audio, run.cfg.model.n_codebooks,
                                      batch)
  out = {}
  for subset, audio in (("decoded", decoded), ("clean", utterances.audio)):
    clips, labels = words(utterances, audio)
    correct = spoken_words.predict(recogniser, clips) == labels
    out[subset] = {"n": len(clips), "metrics": {"accuracy": metrics.summarize(correct)},
                   "chance": {"accuracy": 1 / len(spoken_counting.NUMBER_WORDS)}}
  return out


def evaluate(run, request: EvalRequest, *, progress: bool = True) -> dict:
  """Scores the first `n` held-out utterances (default 128); writes eval.json."""
  check(run.cfg, request)
  n = request.n or DEFAULT_N
  held_out = codec_sampling.held_out(run.cfg)
  clips = held_out.audio[:n]
  result = {}
  suites = request.suites or SUITES[:1]
  if "quality" in suites:
    result.update(quality(run, clips, request.batch))
  if "recogniser" in suites:
    recogniser = train_recogniser(run, progress=progress)
    subset = spoken_counting.Utterances(held_out.audio[:n], held_out.words_NK[:n],
                                        held_out.spans_NK2[:n], held_out.voices[:n])
    result["recogniser"] = recogniser_accuracy(run, recogniser, subset, request.batch)
  aggregate.write(run.eval_path, result, {"step": run.step, "n": n})
  return result
