"""The judge of spoken counting: which number word a clip says.

`train` fits the recogniser (`scaling.models.recogniser`) on word clips; `first_word`
cuts the first word out of a longer clip (speech up to the first pause), the way a
continuation is read; `save`/`load` keep a trained one beside the codec whose decoded
speech it was trained on.
"""

from __future__ import annotations

import io

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm import tqdm

from scaling.data import speech
from scaling.data.spoken_counting import NUMBER_WORDS
from scaling.files import write_atomic
from scaling.models import recogniser as recogniser_lib
from scaling.models.recogniser import Recogniser

RATE = speech.SAMPLE_RATE
WINDOW = int(recogniser_lib.WINDOW_S * RATE)
N_BANDS = 40
QUIET_S = 0.08  # a word ends at the first stretch this long below the silence threshold


def window(clip: np.ndarray) -> np.ndarray:
  """The clip without silence at its ends, left-aligned in `WINDOW` samples."""
  word = speech.trim(np.asarray(clip, np.float32), RATE)[:WINDOW]
  return np.pad(word, (0, WINDOW - len(word)))


def first_word(clip: np.ndarray) -> np.ndarray:
  """From the first sound of `clip` to the first pause after it (empty if silent)."""
  x = np.asarray(clip, np.float32)
  if not len(x) or np.abs(x).max() == 0:
    return x[:0]
  loud = np.abs(x) > speech.SILENCE * np.abs(x).max()
  start = int(np.argmax(loud))
  quiet = int(QUIET_S * RATE)
  # A pause: `quiet` samples in a row with no loud one.
  run = np.convolve(loud[start:].astype(np.int32), np.ones(quiet, np.int32), "valid")
  pauses = np.flatnonzero(run == 0)
  end = start + (int(pauses[0]) if len(pauses) else len(x) - start)
  return x[start:end]


def _features(clips: list[np.ndarray]) -> jax.Array:
  return recogniser_lib.features(jnp.asarray(np.stack([window(c) for c in clips])), RATE)


def train(clips: list[np.ndarray], labels: np.ndarray, *, steps: int = 600, batch: int = 128,
          seed: int = 0, progress: bool = True) -> Recogniser:
  """A recogniser of the number words fitted to these clips (Adam, cross-entropy)."""
  feats = _features(clips)
  labels = jnp.asarray(labels, jnp.int32)
  model = Recogniser(N_BANDS, len(NUMBER_WORDS), rngs=nnx.Rngs(seed))
  graphdef, params = nnx.split(model)
  tx = optax.adamw(optax.cosine_decay_schedule(3e-3, steps), weight_decay=1e-4)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, index):
    def loss(p):
      logits = nnx.merge(graphdef, p)(feats[index])
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels[index]).mean()
    value, grads = jax.value_and_grad(loss)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value

  rng = np.random.default_rng(seed)
  for _ in tqdm(range(steps), desc="recogniser", unit="step", disable=not progress):
    index = rng.integers(0, len(clips), min(batch, len(clips)))
    params, opt_state, _ = step(params, opt_state, index)
  return nnx.merge(graphdef, params)


def predict(model: Recogniser, clips: list[np.ndarray], batch: int = 256) -> np.ndarray:
  """[N] the word each clip says (an index into NUMBER_WORDS)."""
  out = [np.asarray(model(_features(clips[i:i + batch])).argmax(-1))
         for i in range(0, len(clips), batch)]
  return np.concatenate(out) if out else np.zeros(0, np.int64)


def save(model: Recogniser, path: str) -> None:
  buffer = io.BytesIO()
  np.savez(buffer, *[np.asarray(x) for x in jax.tree.leaves(nnx.state(model))])
  write_atomic(path, buffer.getvalue())


def load(path: str) -> Recogniser:
  graphdef, state = nnx.split(Recogniser(N_BANDS, len(NUMBER_WORDS), rngs=nnx.Rngs(0)))
  with np.load(path) as f:
    leaves = [jnp.asarray(f[f"arr_{i}"]) for i in range(len(f.files))]
  return nnx.merge(graphdef, jax.tree.unflatten(jax.tree.structure(state), leaves))
