"""Speech made offline by espeak-ng (Debian's `espeak-ng` package): one word at a time, as
float32 samples at the toolkit's sample rate, its silence trimmed.

espeak-ng writes 16-bit mono WAV at 22,050 Hz; the samples are resampled by a polyphase
filter (scipy) to `SAMPLE_RATE`. Its output is a pure function of the text and the voice
settings, so the data made from it follow from their settings alone.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import shutil
import subprocess
import wave

import numpy as np
from scipy import signal

from scaling.errors import UserError

SAMPLE_RATE = 16_000
ESPEAK_RATE = 22_050
# Samples quieter than this share of the word's peak are silence at its ends.
SILENCE = 0.02
MARGIN_S = 0.01  # kept on each side of the trimmed word


@dataclasses.dataclass(frozen=True)
class Voice:
  """An espeak-ng voice and variant (`en-gb`, `m3`), pitch (0-99) and speed (words a minute)."""
  name: str
  variant: str
  pitch: int
  speed: int

  def key(self) -> str:
    return f"{self.name}+{self.variant} p{self.pitch} s{self.speed}"


def espeak_binary() -> str:
  """The espeak-ng executable, or one `error:` line naming the package to install."""
  path = shutil.which("espeak-ng")
  if path is None:
    raise UserError("espeak-ng is not installed: the spoken data are made with it, offline; "
                    "install the Debian package espeak-ng (apt-get install espeak-ng, or "
                    "bash tools/install_espeak.sh)")
  return path


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
  """16-bit mono PCM WAV bytes as (int16 samples, sample rate). espeak-ng streams to stdout
  with a placeholder length; `wave` reads what is there."""
  with wave.open(io.BytesIO(data)) as w:
    if w.getnchannels() != 1 or w.getsampwidth() != 2:
      raise ValueError(f"expected 16-bit mono, got {8 * w.getsampwidth()}-bit with "
                       f"{w.getnchannels()} channels")
    return np.frombuffer(w.readframes(w.getnframes()), "<i2"), w.getframerate()


def wav_bytes(x: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
  """float samples in [-1, 1] as 16-bit mono PCM WAV bytes (clipped to the range)."""
  pcm = np.round(np.clip(np.asarray(x, np.float64), -1, 1) * 32767).astype("<i2")
  buffer = io.BytesIO()
  with wave.open(buffer, "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes(pcm.tobytes())
  return buffer.getvalue()


def trim(x: np.ndarray, rate: int) -> np.ndarray:
  """`x` without the silence at its ends (keeping `MARGIN_S` on each side)."""
  loud = np.flatnonzero(np.abs(x) > SILENCE * np.abs(x).max())
  if loud.size == 0:
    return x[:0]
  margin = int(MARGIN_S * rate)
  return x[max(loud[0] - margin, 0):loud[-1] + margin + 1]


@functools.lru_cache(maxsize=4096)
def speak(text: str, voice: Voice) -> np.ndarray:
  """`text` spoken by `voice`: float32 samples in [-1, 1] at `SAMPLE_RATE`, silence trimmed."""
  command = [espeak_binary(), "--stdout", "-v", f"{voice.name}+{voice.variant}",
             "-p", str(voice.pitch), "-s", str(voice.speed), text]
  result = subprocess.run(command, capture_output=True, check=False)
  if result.returncode != 0 or not result.stdout:
    raise UserError(f"espeak-ng could not speak {text!r} with voice {voice.key()}: "
                    f"{result.stderr.decode(errors='replace').strip() or 'no output'}")
  pcm, rate = read_wav(result.stdout)
  x = pcm.astype(np.float32) / 32768.0
  x = signal.resample_poly(x, SAMPLE_RATE, rate).astype(np.float32)
  return np.clip(trim(x, SAMPLE_RATE), -1.0, 1.0)
