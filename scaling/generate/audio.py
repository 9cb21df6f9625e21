"""Sampling a trained audio language model: held-out utterances cut before their last
word are the prompts; the model continues their tokens with the shared samplers, and the
codec (the run's `codec.json`) decodes prompt and continuation back into a waveform.

`scaling sample` writes, per utterance, the prompt, the continued clip and the codec's
decoding of the true utterance as WAV files, and their spectrograms in one figure.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np

from scaling import files
from scaling.data import audio_tokens, spoken_counting
from scaling.data.speech import SAMPLE_RATE
from scaling.errors import RequestError, UserError
from scaling.families import audio as audio_family, codec as codec_family
from scaling.generate import decode, sampling, sound
from scaling.generate.request import SampleRequest

CONTINUATION_S = 1.0  # drawn after a prompt unless --max-new-tokens says otherwise


def load_artifacts(workdir: str) -> dict:
  """The codec the run's tokens are of (named in its codec.json)."""
  path = os.path.join(workdir, audio_family.CODEC_LINK)
  link = files.read_json(path)
  if not link:
    raise UserError(f"{workdir} has no {audio_family.CODEC_LINK}: an audio run needs the "
                    "codec its tokens came from")
  return {"codec": codec_family.load_codec(link["codec"])}


def inference_devices(devices: list) -> list:
  return devices[:1]  # tiny models: one device decodes fastest


@dataclasses.dataclass(frozen=True)
class Prompts:
  """Held-out utterances cut before word `word`: each prompt's tokens (with <bos>), the
  frame it ends at, the true continuation's frames (to the word's end) and the word."""
  tokens: list[np.ndarray]
  cut_frames: np.ndarray
  end_frames: np.ndarray
  words: np.ndarray
  codes: list[np.ndarray]          # every frame of the true utterance
  utterances: spoken_counting.Utterances


def held_out_prompts(run, n: int, word: int | None = None) -> Prompts:
  """The first `n` held-out utterances, cut where word `word` (default: the last) starts."""
  d = run.cfg.data
  utterances, codes = audio_family.utterance_codes(d, "test")
  word = d.length - 1 if word is None else word
  hop = run.artifacts["codec"].model.hop
  n = min(n, len(utterances))
  cut = utterances.spans_NK2[:n, word, 0] // hop
  end = -(-utterances.spans_NK2[:n, word, 1] // hop)
  tokens = [audio_tokens.to_tokens(codes[i][:cut[i]], d.codebook_size) for i in range(n)]
  return Prompts(tokens, cut, end, utterances.words_NK[:n, word], codes[:n], utterances)


def continue_tokens(run, prompts: list[np.ndarray], frames: int,
                    cfg: sampling.SamplingConfig, seed: int = 0) -> list[np.ndarray]:
  """`frames` frames of codes [frames, levels] drawn after each prompt."""
  levels = run.cfg.data.levels
  longest = max(map(len, prompts))
  room = (run.context - longest) // levels
  if not 0 < frames <= room:
    raise UserError(f"a continuation of {frames} frames does not fit: the model's context "
                    f"({run.context} tokens) leaves room for {room} after these prompts")
  batch = np.zeros((len(prompts), longest), np.int32)
  for i, p in enumerate(prompts):
    batch[i, :len(p)] = p
  out = decode.generate(run.model, batch, [len(p) for p in prompts],
                        max_new_tokens=frames * levels, cfg=cfg, seed=seed)
  return [audio_tokens.to_codes(row, levels, run.cfg.data.codebook_size)
          for row in np.asarray(out.tokens)]


def waveforms(run, codes: list[np.ndarray], batch: int = 32) -> list[np.ndarray]:
  """The codec's waveform of each clip's codes [F_i, levels], F_i x hop samples long.
  Clips are decoded in batches padded to the longest (one compilation) with the codes of
  silence: the decoder hears a little past a clip's end, and any other code there would
  sound into its last word."""
  model = run.artifacts["codec"].model
  frames = max(len(c) for c in codes)
  levels = codes[0].shape[1]
  silence_n = np.asarray(model.encode(np.zeros((1, 16 * model.hop), np.float32), levels))[0, 8]
  decode_BFn = jax.jit(model.decode)
  out = []
  for start in range(0, len(codes), batch):
    part = codes[start:start + batch]
    codes_BFn = np.tile(silence_n, (batch, frames, 1)).astype(np.int32)
    for row, c in enumerate(part):
      codes_BFn[row, :len(c)] = c
    wave_BT = np.asarray(decode_BFn(codes_BFn))
    out.extend(wave_BT[row, :len(c) * model.hop] for row, c in enumerate(part))
  return out


def sample(run, request: SampleRequest) -> list[str]:
  """`n` held-out utterances (default 2) continued after all but their last word."""
  if request.prompts:
    raise RequestError("prompts", f"{run.workdir} holds an audio model: it continues "
                       "held-out speech, not text; give -n utterances instead of {field}")
  request.unset(("classes", "steps", "sampler", "eta", "guidance", "continue_frames"),
                "is not taken by an audio model")
  cfg = sampling.from_request(request)
  levels, hop = run.cfg.data.levels, run.artifacts["codec"].model.hop
  frames = (request.max_new_tokens // levels if request.max_new_tokens
            else round(CONTINUATION_S * SAMPLE_RATE / hop))
  prompts = held_out_prompts(run, request.count(default=2))
  drawn = continue_tokens(run, prompts.tokens, frames, cfg, request.seed)
  folder = request.out or os.path.join(run.workdir, "samples")
  lines = []
  for i, codes in enumerate(drawn):
    cut = int(prompts.cut_frames[i])
    prompt, continued, true = waveforms(
        run, [prompts.codes[i][:cut], np.concatenate([prompts.codes[i][:cut], codes]),
              prompts.codes[i]], batch=3)
    said = " ".join(spoken_counting.NUMBER_WORDS[w]
                    for w in prompts.utterances.words_NK[i])
    names = {"prompt": prompt, "continued": continued, "true": true}
    for name, clip in names.items():
      sound.write_wav(os.path.join(folder, f"utterance{i}-{name}.wav"), clip)
    figure = os.path.join(folder, f"utterance{i}.png")
    sound.spectrograms([(f"true (codec): {said!r}", true),
                        ("continued by the model after the dashed line", continued)],
                       figure, marks=[None, cut * hop / SAMPLE_RATE])
    lines.append(f"utterance {i} ({said!r}): wrote utterance{i}-prompt/continued/true.wav "
                 f"and {os.path.basename(figure)}")
  return [*lines, f"in {folder}"]
