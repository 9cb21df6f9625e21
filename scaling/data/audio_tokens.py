"""Speech as tokens: a trained codec's codes, flattened level by level into one sequence.

Frame f of a clip quantised with n levels of K codes becomes the n tokens
`2 + q K + code[f, q]` for q = 0..n-1, after one `<bos>` (id 1; 0 pads). Flattening (not
MusicGen's delay pattern) keeps every token's context the exact prefix of the clip, so the
language model's log-probability of a continuation is the clip's, and the samplers need no
knowledge of levels; it costs n steps a frame, which at the 2 levels the study uses is
cheap. Level q of a token is fixed by its position, so a sampled token of another level
is read by its code alone.

`encode_split` runs a codec over a split once and caches the codes beside the codec run.
"""

from __future__ import annotations

import hashlib
import io
import math
import os

import jax
import numpy as np

from scaling.data.examples import Examples
from scaling.files import write_atomic

PAD_ID, BOS_ID = 0, 1
FIRST_CODE = 2


def vocab_size(levels: int, codebook_size: int) -> int:
  return FIRST_CODE + levels * codebook_size


def to_tokens(codes_Fn: np.ndarray, codebook_size: int) -> np.ndarray:
  """[1 + F n] int32: `<bos>`, then each frame's codes, level by level."""
  F, n = codes_Fn.shape
  offsets = FIRST_CODE + codebook_size * np.arange(n)
  return np.concatenate([[BOS_ID], (codes_Fn + offsets).reshape(-1)]).astype(np.int32)


def to_codes(tokens: np.ndarray, levels: int, codebook_size: int) -> np.ndarray:
  """[F, levels] codes of a token sequence without `<bos>` (whole frames only)."""
  frames = len(tokens) // levels
  t = np.asarray(tokens[:frames * levels], np.int64).reshape(frames, levels)
  return np.maximum(t - FIRST_CODE, 0) % codebook_size


def frames_of(samples: int, hop: int) -> int:
  return math.ceil(samples / hop)


def encode_audio(codec_run, audio: list[np.ndarray], levels: int,
                 batch: int = 32) -> list[np.ndarray]:
  """Each clip's codes [F_i, levels], F_i = ceil(len / hop) (zero-padded to whole frames),
  encoded in batches of similar lengths."""
  hop = codec_run.model.hop
  encode = jax.jit(lambda wave_BT: codec_run.model.encode(wave_BT, levels))
  order = np.argsort([len(a) for a in audio], kind="stable")
  out: list[np.ndarray] = [None] * len(audio)  # type: ignore[list-item]
  for start in range(0, len(order), batch):
    index = order[start:start + batch]
    # Lengths rounded up to 8 frames: few distinct shapes to compile.
    frames = 8 * math.ceil(max(frames_of(len(audio[i]), hop) for i in index) / 8)
    wave_BT = np.zeros((batch, frames * hop), np.float32)
    for row, i in enumerate(index):
      wave_BT[row, :len(audio[i])] = audio[i]
    codes_BFn = np.asarray(encode(wave_BT))
    for row, i in enumerate(index):
      out[i] = codes_BFn[row, :frames_of(len(audio[i]), hop)]
  return out


def cached_codes(codec_run, name: str, audio: list[np.ndarray], levels: int
                 ) -> list[np.ndarray]:
  """`encode_audio`, written once to `<codec>/tokens/` under the data's name, the codec's
  step and the levels (a codec trained further writes new files)."""
  key = hashlib.sha256(f"{name}|{codec_run.step}|{levels}".encode()).hexdigest()[:12]
  path = os.path.join(codec_run.workdir, "tokens", f"{name}-levels{levels}-{key}.npz")
  if os.path.exists(path):
    with np.load(path) as f:
      flat, lengths = f["codes"], f["lengths"]
    return np.split(flat, np.cumsum(lengths)[:-1])
  codes = encode_audio(codec_run, audio, levels)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  buffer = io.BytesIO()
  np.savez(buffer, codes=np.concatenate(codes), lengths=np.array([len(c) for c in codes]))
  write_atomic(path, buffer.getvalue())
  return codes


def examples(codes: list[np.ndarray], codebook_size: int, seq_len: int) -> Examples:
  """Next-token rows of every clip: inputs, targets, loss on every real target."""
  rows = [to_tokens(c, codebook_size) for c in codes]
  longest = max(map(len, rows))
  if longest > seq_len + 1:
    raise ValueError(f"the longest clip is {longest} tokens with <bos>; seq_len must be at "
                     f"least {longest - 1}")
  tokens = np.full((len(rows), seq_len + 1), PAD_ID, np.int32)
  for i, row in enumerate(rows):
    tokens[i, :len(row)] = row
  mask = (tokens[:, 1:] != PAD_ID).astype(np.float32)
  return Examples(tokens[:, :-1], tokens[:, 1:], mask)
