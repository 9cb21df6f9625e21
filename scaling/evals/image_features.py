"""Image-quality metrics: Fréchet and kernel distances between classifier features, and
class accuracy of generated images under a small CNN trained on the real data.

The classifier plays Inception's part in FID/KID for these small datasets. It is trained
once per (dataset, image size, version) and cached under
`<data_dir>/classifiers/<name>-size<S>-v<VERSION>/` (`params.npz` + `classifier.json`,
which records its held-out accuracy), so every run of a sweep scores with the same one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from scaling.data import builders
from scaling.data import image_sets as images_lib

VERSION = 1  # bump when the architecture or training recipe changes: old caches are ignored
FEATURES = 128
STEPS = {"digits": 300, "mnist": 1500, "cifar10": 3000}
BATCH = 128
LEARNING_RATE = 3e-3
SEED = 0
EVAL_BATCH = 512  # fixed, padded: one compilation for any number of images


class CNN(nnx.Module):
  """Two stride-2 3x3 convolutions (16, 32 channels), a `FEATURES`-wide ReLU layer, a linear head.

  Strided convolutions, not pooling: training with pooling windows was ~3x slower on XLA:CPU.
  """

  def __init__(self, image_size: int, channels: int, num_classes: int, *, rngs: nnx.Rngs):
    self.conv1 = nnx.Conv(channels, 16, (3, 3), strides=2, rngs=rngs)
    self.conv2 = nnx.Conv(16, 32, (3, 3), strides=2, rngs=rngs)
    side = -(-image_size // 4)  # "SAME" padding: each stride-2 layer rounds up
    self.hidden = nnx.Linear(side * side * 32, FEATURES, rngs=rngs)
    self.head = nnx.Linear(FEATURES, num_classes, rngs=rngs)

  def features(self, x_NHWC: jax.Array) -> jax.Array:
    x = nnx.relu(self.conv2(nnx.relu(self.conv1(x_NHWC))))
    return nnx.relu(self.hidden(x.reshape(x.shape[0], -1)))

  def __call__(self, x_NHWC: jax.Array) -> jax.Array:
    return self.head(self.features(x_NHWC))


@dataclasses.dataclass
class Classifier:
  """A trained CNN: `features` (penultimate layer), `predict`, and its held-out `accuracy`."""

  model: CNN
  info: dict
  directory: str

  @property
  def accuracy(self) -> float:
    return self.info["test_accuracy"]

  def _apply(self, fn, images_NHWC) -> np.ndarray:
    size, channels = self.info["image_size"], self.info["channels"]
    images_NHWC = np.asarray(images_NHWC, np.float32)
    if images_NHWC.ndim != 4 or images_NHWC.shape[1:] != (size, size, channels):
      raise ValueError(f"expected images [N, {size}, {size}, {channels}], got {images_NHWC.shape}")
    graphdef, params = nnx.split(self.model)
    out = []
    for start in range(0, len(images_NHWC), EVAL_BATCH):
      part = images_NHWC[start:start + EVAL_BATCH]
      padded = np.zeros((EVAL_BATCH, *part.shape[1:]), np.float32)
      padded[:len(part)] = part
      out.append(np.asarray(fn(graphdef, params, padded))[:len(part)])
    return np.concatenate(out) if out else np.zeros((0,), np.float32)

  def features(self, images_NHWC) -> np.ndarray:
    """Penultimate-layer features [N, FEATURES] (float32) of images in [-1, 1]."""
    return self._apply(_features, images_NHWC).reshape(-1, FEATURES)

  def predict(self, images_NHWC) -> np.ndarray:
    """Predicted labels [N] (int32) of images in [-1, 1]."""
    return self._apply(_predict, images_NHWC).astype(np.int32)


@jax.jit
def _features(graphdef, params, x_NHWC):
  return nnx.merge(graphdef, params).features(x_NHWC)


@jax.jit
def _predict(graphdef, params, x_NHWC):
  return jnp.argmax(nnx.merge(graphdef, params)(x_NHWC), axis=-1)


def classifier_for(data_cfg, data_dir: str | None = None) -> Classifier:
  """The cached classifier of the configured dataset and image size, trained now if missing."""
  name = images_lib.check(data_cfg)
  data_dir = builders.resolve_data_dir(data_cfg, data_dir)
  size, channels = data_cfg["image_size"], data_cfg["channels"]
  directory = os.path.join(data_dir, "classifiers", f"{name}-size{size}-v{VERSION}")
  if not os.path.exists(os.path.join(directory, "classifier.json")):
    train = images_lib.load(data_cfg, "train", data_dir)
    test = images_lib.load(data_cfg, "test", data_dir)
    model, info = _train(train, test, size, channels)
    save_params(model, info, directory)
  with open(os.path.join(directory, "classifier.json")) as f:
    info = json.load(f)
  make = lambda: _make(size, channels, info["num_classes"])
  return Classifier(load_params(directory, make), info, directory)


def _make(size: int, channels: int, num_classes: int) -> CNN:
  return CNN(size, channels, num_classes, rngs=nnx.Rngs(SEED))


def init_params(abstract: nnx.State, seed: int = SEED) -> nnx.State:
  """LeCun-normal kernels and zero biases, drawn by numpy: compiling JAX's RNG costs seconds."""
  rng = np.random.default_rng(seed)

  def init(a):
    if a.ndim == 1:
      return jnp.asarray(np.zeros(a.shape, a.dtype))
    return jnp.asarray(rng.standard_normal(a.shape) / np.sqrt(np.prod(a.shape[:-1])), a.dtype)

  return jax.tree.map(init, abstract)


def _train(train: images_lib.ImageSet, test: images_lib.ImageSet, size: int,
           channels: int) -> tuple[CNN, dict]:
  """Adam with cosine decay for a fixed number of steps over a seeded shuffle of `train`."""
  start = time.perf_counter()
  graphdef, abstract = nnx.split(nnx.eval_shape(lambda: _make(size, channels, train.num_classes)))
  params = init_params(abstract)
  steps = STEPS[train.name]
  tx = optax.adam(optax.cosine_decay_schedule(LEARNING_RATE, steps))
  opt_state = jax.jit(tx.init)(params)

  @jax.jit
  def step(params, opt_state, x_NHWC, labels_N):
    def loss_fn(params):
      logits = nnx.merge(graphdef, params)(x_NHWC)
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels_N).mean()
    grads = jax.grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  # One jitted step per call: a lax.scan over all steps ran several times slower on XLA:CPU.
  rng = np.random.default_rng(SEED)
  per_epoch = len(train) // BATCH
  for i in range(steps):
    if i % per_epoch == 0:
      order = rng.permutation(len(train))
    index = order[(i % per_epoch) * BATCH:(i % per_epoch + 1) * BATCH]
    params, opt_state = step(params, opt_state, train.images_NHWC[index], train.labels_N[index])
  model = nnx.merge(graphdef, params)
  clf = Classifier(model, {"image_size": size, "channels": channels}, "")
  info = {
      "dataset": train.name, "image_size": size, "channels": channels,
      "num_classes": train.num_classes, "version": VERSION, "features": FEATURES,
      "train_steps": steps, "batch_size": BATCH, "learning_rate": LEARNING_RATE, "seed": SEED,
      "train_examples": len(train), "test_examples": len(test),
      "train_accuracy": class_accuracy(clf, train.images_NHWC, train.labels_N),
      "test_accuracy": class_accuracy(clf, test.images_NHWC, test.labels_N),
      "train_seconds": round(time.perf_counter() - start, 2),
  }
  return model, info


def save_params(model: nnx.Module, info: dict, directory: str) -> None:
  """Writes to a temporary folder, then renames it: readers never see half a cache."""
  tmp = f"{directory}.tmp-{socket.gethostname()}-{os.getpid()}"  # hosts may share the folder
  os.makedirs(tmp, exist_ok=True)
  flat = jax.tree_util.tree_flatten_with_path(nnx.state(model, nnx.Param))[0]
  np.savez(os.path.join(tmp, "params.npz"),
           **{jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in flat})
  with open(os.path.join(tmp, "classifier.json"), "w") as f:
    json.dump(info, f, indent=2, sort_keys=True)
    f.write("\n")
  try:
    os.rename(tmp, directory)
  except OSError:  # Another process finished first; its cache is equally good.
    shutil.rmtree(tmp, ignore_errors=True)


def load_params(directory: str, make) -> nnx.Module:
  """The model `make()` builds, with the parameters `save_params` wrote to `directory`."""
  model = nnx.eval_shape(make)
  params = nnx.state(model, nnx.Param)
  paths, treedef = jax.tree_util.tree_flatten_with_path(params)
  with np.load(os.path.join(directory, "params.npz")) as f:
    leaves = [jnp.asarray(f[jax.tree_util.keystr(path)]) for path, _ in paths]
  nnx.update(model, jax.tree_util.tree_unflatten(treedef, leaves))
  return model


# --- distances between feature sets ----------------------------------------------------


def _moments(feats_ND) -> tuple[np.ndarray, np.ndarray]:
  feats_ND = np.asarray(feats_ND, np.float64)
  if feats_ND.ndim != 2 or len(feats_ND) < 2:
    raise ValueError(f"need features [N >= 2, D], got shape {feats_ND.shape}")
  return feats_ND.mean(0), np.cov(feats_ND, rowvar=False).reshape(feats_ND.shape[1], -1)


def _sqrt_psd(matrix_DD: np.ndarray) -> np.ndarray:
  values, vectors = np.linalg.eigh((matrix_DD + matrix_DD.T) / 2)
  return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(feats_a_ND, feats_b_ND) -> float:
  """Fréchet distance between Gaussians fitted to two feature sets (FID's formula).

  Tr (S_a S_b)^1/2 is taken as the sum of square roots of the eigenvalues of the symmetric
  S_a^1/2 S_b S_a^1/2 (a similar matrix): real by construction, no complex `sqrtm`.
  """
  mu_a, cov_a = _moments(feats_a_ND)
  mu_b, cov_b = _moments(feats_b_ND)
  if mu_a.shape != mu_b.shape:
    raise ValueError(f"feature widths differ: {mu_a.shape[0]} and {mu_b.shape[0]}")
  root_a = _sqrt_psd(cov_a)
  middle = root_a @ cov_b @ root_a
  trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
  fd = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root
  return float(max(fd, 0.0))  # Rounding can push a zero distance slightly below zero.


def kernel_distance(feats_a_ND, feats_b_ND, *, num_subsets: int = 100, subset_size: int = 1000,
                    seed: int = 0) -> tuple[float, float]:
  """KID: unbiased MMD² with kernel (x·y/D + 1)³, mean and std over random subsets.

  Each subset draws min(subset_size, N_a, N_b) rows of each set without replacement.
  """
  a_ND, b_ND = np.asarray(feats_a_ND, np.float64), np.asarray(feats_b_ND, np.float64)
  if a_ND.ndim != 2 or a_ND.shape[1:] != b_ND.shape[1:]:
    raise ValueError(f"need features [N, D] of one width, got {a_ND.shape} and {b_ND.shape}")
  m, d = min(subset_size, len(a_ND), len(b_ND)), a_ND.shape[1]
  if m < 2:
    raise ValueError("KID needs at least 2 rows in each feature set")
  rng = np.random.default_rng(seed)
  kernel = lambda x, y: (x @ y.T / d + 1) ** 3
  estimates = []
  for _ in range(num_subsets):
    x = a_ND[rng.choice(len(a_ND), m, replace=False)]
    y = b_ND[rng.choice(len(b_ND), m, replace=False)]
    k_xx, k_yy = kernel(x, x), kernel(y, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    estimates.append(within - 2 * kernel(x, y).mean())
  return float(np.mean(estimates)), float(np.std(estimates))


def class_accuracy(classifier: Classifier, images_NHWC, labels_N) -> float:
  """Fraction of images the classifier assigns to the given labels."""
  return float(np.mean(classifier.predict(images_NHWC) == np.asarray(labels_N)))


def image_metrics(classifier: Classifier, generated_NHWC, generated_labels_N, real_NHWC, *,
                  kid_subsets: int = 100, kid_subset_size: int = 1000, seed: int = 0) -> dict:
  """FD, KID (mean, std) of generated vs real images, and class accuracy of the generated.

  `generated_labels_N` are the classes the images were conditioned on (None: unconditional,
  no `class_accuracy`). `classifier_accuracy` is the classifier's own held-out accuracy.
  """
  gen_ND, real_ND = classifier.features(generated_NHWC), classifier.features(real_NHWC)
  kid, kid_std = kernel_distance(gen_ND, real_ND, num_subsets=kid_subsets,
                                 subset_size=kid_subset_size, seed=seed)
  out = {"fd": frechet_distance(gen_ND, real_ND), "kid": kid, "kid_std": kid_std,
         "num_generated": len(gen_ND), "num_real": len(real_ND),
         "classifier_accuracy": classifier.accuracy}
  if generated_labels_N is not None:
    out["class_accuracy"] = class_accuracy(classifier, generated_NHWC, generated_labels_N)
  return out
