"""What a clip looks like to two small networks: the digits classifier on each frame's digit
(identity, per-frame quality) and a convolutional network over space and time (a clip-level
Frechet distance, after FVD).

The frame view crops a digit-sized window on each frame's centre of mass and shrinks it to
the digits' 8x8, so the toolkit's digits classifier (`image_features`) labels it and gives
its features. The clip network is trained once per clip setting on the training clips to
name the digit and its velocity on each axis, so its features see shape and motion; it is
cached under `<data_dir>/classifiers/` like the digits classifier. Its Frechet distance is
comparable only between clips of one setting, never with published FVD numbers (those use
an I3D network trained on Kinetics).
"""

from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from scaling.data import builders, image_sets, moving_digits
from scaling.evals import image_features

DIGIT_PIXELS = 8  # the digits classifier's image size
VERSION = 2       # bump when the clip network's architecture or training changes
FEATURES = 64
STEPS = 600
BATCH = 64
LEARNING_RATE = 3e-3
SEED = 0


# --- each frame's digit ------------------------------------------------------------------

def digit_crops(clips_NFHWC: np.ndarray, digit_size: int) -> np.ndarray:
  """[N * F, 8, 8, 1] in [-1, 1]: each frame's digit-sized window centred on the middle of
  its brightness (where 1% of it lies on either side, per axis), kept inside the canvas and
  averaged down to the digits' 8x8. The middle of the span frames a digit as the classifier
  saw it; the centre of mass, pulled towards a digit's heavier strokes, cost 15 points of
  held-out accuracy."""
  frames = np.clip((np.asarray(clips_NFHWC, np.float64)[..., 0] + 1) / 2, 0, 1)
  frames = frames.reshape(-1, *frames.shape[-2:])
  canvas, factor = frames.shape[-1], digit_size // DIGIT_PIXELS
  crops = np.empty((len(frames), digit_size, digit_size))
  for i, frame in enumerate(frames):
    r0, c0 = (_window_start(_middle(frame.sum(axis)), canvas, digit_size) for axis in (1, 0))
    crops[i] = frame[r0:r0 + digit_size, c0:c0 + digit_size]
  small = crops.reshape(-1, DIGIT_PIXELS, factor, DIGIT_PIXELS, factor).mean((2, 4))
  return (small * 2 - 1).astype(np.float32)[..., None]


def _middle(mass_S: np.ndarray, tail: float = 0.01) -> float:
  """The middle of the span holding all but `tail` of the mass at each end (pixels)."""
  if mass_S.sum() <= 0:
    return len(mass_S) / 2
  cumulative = np.cumsum(mass_S) / mass_S.sum()
  return (np.searchsorted(cumulative, tail) + np.searchsorted(cumulative, 1 - tail) + 1) / 2


def _window_start(middle: float, canvas: int, size: int) -> int:
  return int(round(min(max(middle - size / 2, 0), canvas - size)))


def digits_classifier(data_dir: str | None = None) -> image_features.Classifier:
  """The toolkit's cached digits classifier at 8x8 (trained on first use)."""
  section = ml_collections.ConfigDict(dict(kind="images", name="digits",
                                           image_size=DIGIT_PIXELS, channels=1,
                                           num_classes=image_sets.NUM_CLASSES,
                                           data_dir=data_dir or ""))
  return image_features.classifier_for(section, data_dir)


def identity(frame_labels_NF: np.ndarray, labels_N: np.ndarray | None = None) -> dict:
  """Per clip: `identity_consistency`, the share of its frames given its most common label
  (1 when the digit keeps its identity), and `class_accuracy`, the share given its
  conditioning label (when `labels_N` is known)."""
  frame_labels_NF = np.asarray(frame_labels_NF)
  counts_NK = np.stack([np.bincount(row, minlength=image_sets.NUM_CLASSES)
                        for row in frame_labels_NF])
  out = {"identity_consistency": counts_NK.max(1) / frame_labels_NF.shape[1]}
  if labels_N is not None:
    out["class_accuracy"] = (frame_labels_NF == np.asarray(labels_N)[:, None]).mean(1)
  return out


def chance_identity(frames: int, draws: int = 20_000) -> float:
  """The identity consistency of frames labelled independently and uniformly at random
  (Monte Carlo with a fixed seed)."""
  labels = np.random.default_rng(0).integers(0, image_sets.NUM_CLASSES, (draws, frames))
  return float(identity(labels)["identity_consistency"].mean())


# --- the clip network --------------------------------------------------------------------

class ClipCNN(nnx.Module):
  """A (2+1)-D convolutional network (Tran et al. 2018): at the digits' native resolution,
  two stride-2 3x3 convolutions (16, 32 channels) and a dense layer on every frame, a
  convolution over time (3 frames), a `FEATURES`-wide ReLU layer over the whole clip, and
  heads for the digit's class and its velocity per axis. Factorised, not full 3-D kernels:
  in single runs on 2 cores these trained in seconds where full 3-D kernels took over a
  minute (timed one after the other, not interleaved)."""

  def __init__(self, frames: int, canvas: int, digit_size: int, *, rngs: nnx.Rngs):
    self.factor = digit_size // DIGIT_PIXELS  # pooled to the digits' native pixels
    side = -(-(canvas // self.factor) // 4)   # "SAME" padding: each stride-2 layer rounds up
    self.conv1 = nnx.Conv(1, 16, (3, 3), strides=2, rngs=rngs)
    self.conv2 = nnx.Conv(16, 32, (3, 3), strides=2, rngs=rngs)
    self.frame = nnx.Linear(side * side * 32, FEATURES, rngs=rngs)
    self.time = nnx.Conv(FEATURES, FEATURES, (3,), rngs=rngs)
    self.hidden = nnx.Linear(frames * FEATURES, FEATURES, rngs=rngs)
    self.label_head = nnx.Linear(FEATURES, image_sets.NUM_CLASSES, rngs=rngs)
    self.velocity_head = nnx.Linear(FEATURES, 2 * N_SPEEDS, rngs=rngs)

  def features(self, x_NFHWC: jax.Array) -> jax.Array:
    n, f = x_NFHWC.shape[:2]
    x = _pool(x_NFHWC, self.factor)
    x = x.reshape(n * f, *x.shape[2:])
    x = nnx.relu(self.conv2(nnx.relu(self.conv1(x))))
    x_NFD = nnx.relu(self.frame(x.reshape(n * f, -1))).reshape(n, f, -1)
    x_NFD = nnx.relu(self.time(x_NFD))
    return nnx.relu(self.hidden(x_NFD.reshape(n, -1)))

  def __call__(self, x_NFHWC: jax.Array) -> tuple[jax.Array, jax.Array]:
    h = self.features(x_NFHWC)
    return self.label_head(h), self.velocity_head(h).reshape(-1, 2, N_SPEEDS)


def _pool(x_NFHWC: jax.Array, factor: int) -> jax.Array:
  """Mean pooling in space by `factor`: the digits are upscaled by it, so little is lost,
  and 3-D convolutions on XLA:CPU cost 1 / factor^2."""
  n, f, h, w, c = x_NFHWC.shape
  return x_NFHWC.reshape(n, f, h // factor, factor, w // factor, factor, c).mean((3, 5))


# Velocities -3..-1, 1..3 as classes 0..5.
N_SPEEDS = 2 * moving_digits.MAX_SPEED


def _speed_class(velocity):
  velocity = np.asarray(velocity)
  return np.where(velocity < 0, velocity + moving_digits.MAX_SPEED,
                  velocity + moving_digits.MAX_SPEED - 1).astype(np.int32)


class ClipNetwork:
  """A trained `ClipCNN`: `features` of clips and its held-out accuracies (`info`)."""

  def __init__(self, model: ClipCNN, info: dict):
    self.model, self.info = model, info
    self._features = jax.jit(lambda graphdef, params, x: nnx.merge(graphdef, params).features(x))

  def features(self, clips_NFHWC) -> np.ndarray:
    """[N, FEATURES] float32 of clips in [-1, 1]."""
    graphdef, params = nnx.split(self.model)
    clips_NFHWC = np.asarray(clips_NFHWC, np.float32)
    out = [np.asarray(self._features(graphdef, params, clips_NFHWC[s:s + BATCH]))
           for s in range(0, len(clips_NFHWC), BATCH)]
    return np.concatenate(out) if out else np.zeros((0, FEATURES), np.float32)


def clip_network(config: moving_digits.MovingDigitsConfig,
                 data_dir: str | None = None) -> ClipNetwork:
  """The cached clip network of this clip setting, trained now if missing."""
  data_dir = data_dir or builders.default_data_dir()
  directory = os.path.join(data_dir, "classifiers", f"clips-{config.name}-v{VERSION}")
  make = lambda: ClipCNN(config.frames, config.canvas, config.digit_size,
                         rngs=nnx.Rngs(SEED))
  if not os.path.exists(os.path.join(directory, "classifier.json")):
    model, info = _train(moving_digits.load("train", config, data_dir),
                         moving_digits.load("test", config, data_dir), make)
    image_features.save_params(model, info, directory)
  with open(os.path.join(directory, "classifier.json")) as f:
    info = json.load(f)
  return ClipNetwork(image_features.load_params(directory, make), info)


def _accuracies(model: ClipCNN, clips: moving_digits.ClipSet) -> dict:
  graphdef, params = nnx.split(model)
  apply = jax.jit(lambda p, x: nnx.merge(graphdef, p)(x))
  labels, speeds = [], []
  for s in range(0, len(clips), BATCH):
    label_logits, speed_logits = apply(params, clips.videos_NFHWC[s:s + BATCH])
    labels.append(np.argmax(label_logits, -1))
    speeds.append(np.argmax(speed_logits, -1))
  return {"label_accuracy": float(np.mean(np.concatenate(labels) == clips.labels_N)),
          "velocity_accuracy": float(np.mean(
              np.concatenate(speeds) == _speed_class(clips.velocities_NK2[:, 0])))}


def _train(train: moving_digits.ClipSet, test: moving_digits.ClipSet, make) -> tuple:
  """Adam with cosine decay over a seeded shuffle of the training clips; loss: the class
  and both velocity classes."""
  start = time.perf_counter()
  graphdef, abstract = nnx.split(nnx.eval_shape(make))
  params = image_features.init_params(abstract, SEED)
  tx = optax.adam(optax.cosine_decay_schedule(LEARNING_RATE, STEPS))
  opt_state = jax.jit(tx.init)(params)
  speeds_N2 = _speed_class(train.velocities_NK2[:, 0])

  @jax.jit
  def step(params, opt_state, x_NFHWC, labels_N, speeds_N2):
    def loss_fn(params):
      label_logits, speed_logits = nnx.merge(graphdef, params)(x_NFHWC)
      xent = optax.softmax_cross_entropy_with_integer_labels
      return xent(label_logits, labels_N).mean() + xent(speed_logits, speeds_N2).mean()
    updates, opt_state = tx.update(jax.grad(loss_fn)(params), opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  rng = np.random.default_rng(SEED)
  batch = min(BATCH, len(train))
  per_epoch = len(train) // batch
  for i in range(STEPS):
    if i % per_epoch == 0:
      order = rng.permutation(len(train))
    index = order[(i % per_epoch) * batch:(i % per_epoch + 1) * batch]
    params, opt_state = step(params, opt_state, train.videos_NFHWC[index],
                             train.labels_N[index], speeds_N2[index])
  model = nnx.merge(graphdef, params)
  info = {"version": VERSION, "features": FEATURES, "train_steps": STEPS, "batch_size": batch,
          "learning_rate": LEARNING_RATE, "seed": SEED, "train_clips": len(train),
          "test_clips": len(test),
          **{f"test_{k}": v for k, v in _accuracies(model, test).items()},
          "train_seconds": round(time.perf_counter() - start, 2)}
  return model, info
