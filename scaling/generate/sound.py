"""Writing speech a model made: WAV files and spectrograms to look at beside them."""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure

from scaling.data import speech
from scaling.files import write_atomic


def write_wav(path: str, clip: np.ndarray) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  write_atomic(path, speech.wav_bytes(clip))


def spectrograms(clips: list[tuple[str, np.ndarray]], path: str,
                 marks: list[float | None] | None = None) -> None:
  """One spectrogram per (title, clip), stacked, on a shared time axis (seconds); a
  dashed line at `marks[i]` seconds (where a prompt ends)."""
  fig = Figure(figsize=(8, 1.6 * len(clips) + 0.4), layout="constrained")
  axes = np.atleast_1d(fig.subplots(len(clips), 1, sharex=True))
  rate = speech.SAMPLE_RATE
  for i, (ax, (title, clip)) in enumerate(zip(axes, clips)):
    clip = np.asarray(clip, np.float64)
    if len(clip) >= 256:
      with np.errstate(divide="ignore"):  # a silent clip's bins are -inf dB, drawn dark
        ax.specgram(clip, NFFT=256, Fs=rate, noverlap=192, cmap="magma", vmin=-120)
    ax.set_title(title, fontsize=9, loc="left")
    ax.set_ylabel("Hz", fontsize=8)
    if marks and marks[i] is not None:
      ax.axvline(marks[i], color="white", linestyle="--", linewidth=1)
  axes[-1].set_xlabel("seconds")
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=60)
