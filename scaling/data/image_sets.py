"""Image datasets for diffusion models, as arrays in [-1, 1] and grain pipelines.

`digits` is scikit-learn's 1,797 8x8 handwritten digits, written once as a TFDS
array_record dataset under `<data_dir>/sklearn_digits/size<S>/<version>` with a fixed
held-out split (15%, by a permutation with a fixed seed, the same for every run).
`mnist` and `cifar10` are read from TFDS data the user prepared (array_record).

Every image is stored or read as uint8, resized to `image_size` x `image_size` by
antialiased bilinear interpolation when that differs from its native size (8, 28, 32),
then scaled to [-1, 1].
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import tensorflow_datasets as tfds

from scaling.errors import ConfigError
from scaling.data import builders, pipeline
from scaling.data.examples import read_all

NATIVE = {"digits": (8, 1), "mnist": (28, 1), "cifar10": (32, 3)}  # (size, channels)
NUM_CLASSES = 10  # all three have ten classes
SPLITS = ("train", "test")
TEST_FRACTION = 0.15
# Fixed, not the run's seed: every run (and its classifier) holds out the same digits.
SPLIT_SEED = 0


@dataclasses.dataclass(kw_only=True)
class DigitsConfig(tfds.core.BuilderConfig):
  image_size: int = 8
  test_fraction: float = TEST_FRACTION
  split_seed: int = SPLIT_SEED


class SklearnDigits(tfds.core.GeneratorBasedBuilder):
  """scikit-learn's 8x8 digits: `image` uint8 [S, S, 1], `label` 0-9, `index` in sklearn's order."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = []  # Configs are made from run configs, not listed here.

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.image_size
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(size, size, 1), dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
            "index": tfds.features.Scalar(dtype=np.int32),
        }),
        description="scikit-learn's UCI handwritten digits (pixels 0-16 scaled to 0-255).",
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: self._generate_examples(split) for split in SPLITS}

  def _generate_examples(self, split):
    from sklearn.datasets import load_digits  # ships with scikit-learn: no download
    c = self.builder_config
    digits = load_digits()
    pixels_NHW = np.round(digits.images * (255 / 16)).astype(np.uint8)
    images_NHWC = resize_uint8(pixels_NHW[..., None], c.image_size)
    n = len(images_NHWC)
    held_out = np.zeros(n, bool)
    held_out[np.random.default_rng(c.split_seed).permutation(n)[:round(n * c.test_fraction)]] = True
    for i in np.flatnonzero(held_out == (split == "test")):
      yield int(i), {"image": images_NHWC[i], "label": int(digits.target[i]), "index": int(i)}


def digits_builder(image_size: int, data_dir: str | None = None) -> tfds.core.DatasetBuilder:
  """The TFDS builder of the digits at `image_size` (prepare it with download_and_prepare)."""
  return SklearnDigits(config=DigitsConfig(name=f"size{image_size}", image_size=image_size),
                       data_dir=data_dir or builders.default_data_dir(), file_format="array_record")


def resize_uint8(images_NHWC: np.ndarray, size: int, chunk: int = 4096) -> np.ndarray:
  """Antialiased bilinear resize of uint8 images to `size` x `size` (unchanged if already so)."""
  n, height, width, channels = images_NHWC.shape
  if (height, width) == (size, size):
    return images_NHWC
  out = np.empty((n, size, size, channels), np.uint8)
  for start in range(0, n, chunk):  # Bounded memory for 60k-image sets.
    part = np.asarray(images_NHWC[start:start + chunk], np.float32)
    resized = jax.image.resize(part, (len(part), size, size, channels), "linear", antialias=True)
    out[start:start + chunk] = np.clip(np.round(np.asarray(resized)), 0, 255).astype(np.uint8)
  return out


def to_unit_range(images_NHWC: np.ndarray) -> np.ndarray:
  """uint8 [0, 255] -> float32 [-1, 1]."""
  return (np.asarray(images_NHWC, np.float32) / 127.5 - 1.0).astype(np.float32)


def to_uint8(images_NHWC) -> np.ndarray:
  """float [-1, 1] -> uint8 [0, 255], clipping what a sampler overshoots (for saving images)."""
  pixels = np.round((np.asarray(images_NHWC, np.float32) + 1.0) * 127.5)
  return np.clip(pixels, 0, 255).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class ImageSet:
  """A split as arrays: `images_NHWC` float32 in [-1, 1], `labels_N` int32."""

  images_NHWC: np.ndarray
  labels_N: np.ndarray
  num_classes: int
  name: str

  def __len__(self) -> int:
    return len(self.labels_N)

  def rows(self, index) -> dict[str, np.ndarray]:
    return {"images": self.images_NHWC[index], "labels": self.labels_N[index]}


def check(data_cfg) -> str:
  """Validates an images `data` section; returns the dataset name."""
  name = data_cfg["name"]
  if data_cfg["kind"] != "images":
    raise ConfigError(f"config.data.kind: expected 'images', got {data_cfg['kind']!r}")
  if name not in NATIVE:
    raise ConfigError(f"config.data.name: unknown image dataset {name!r}; "
                      f"choose one of {', '.join(NATIVE)}")
  size, channels = data_cfg["image_size"], data_cfg["channels"]
  if not isinstance(size, int) or size < 4:
    raise ConfigError(f"config.data.image_size: must be an integer >= 4, got {size!r}")
  if channels != NATIVE[name][1]:
    raise ConfigError(f"config.data.channels: {name} has {NATIVE[name][1]} channel(s), "
                      f"got {channels}")
  if data_cfg["num_classes"] != NUM_CLASSES:
    raise ConfigError(f"config.data.num_classes: {name} has {NUM_CLASSES} classes, "
                      f"got {data_cfg['num_classes']}")
  return name


def load(data_cfg, split: str, data_dir: str | None = None) -> ImageSet:
  """A split ("train" or "test") of the configured image dataset, resized and scaled."""
  name = check(data_cfg)
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
  data_dir = builders.resolve_data_dir(data_cfg, data_dir)
  size = data_cfg["image_size"]
  if name == "digits":
    # The builder reads what is written when it is made: made before the lock, while
    # another process writes the set, it would find no splits after waiting for it.
    with builders.preparing(data_dir):
      builder = digits_builder(size, data_dir)
      builder.download_and_prepare()
    records = read_all(builder.as_data_source(split=split))
    records.sort(key=lambda r: r["index"])  # Written shuffled; read in the original order.
  else:
    records = read_all(_prepared_source(name, split, data_dir))
  images_NHWC = resize_uint8(np.stack([r["image"] for r in records]), size)
  labels_N = np.array([r["label"] for r in records], np.int32)
  return ImageSet(to_unit_range(images_NHWC), labels_N, NUM_CLASSES, name)


def _prepared_source(name: str, split: str, data_dir: str):
  """The user-prepared TFDS split: `tfds.data_source(..., download=False)` with a clear error."""
  prepare = (f"prepare it once where TensorFlow is installed: "
             f"tfds build {name} --file_format=array_record --data_dir={data_dir}")
  builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
  if not builder.is_prepared():
    raise ConfigError(f"config.data.name: {name} is not prepared under {data_dir}; {prepare}")
  try:
    return builder.as_data_source(split=split)
  except (NotImplementedError, ValueError, KeyError) as e:  # e.g. written as tfrecord
    raise ConfigError(f"config.data.name: cannot read {name} from {data_dir} "
                      f"({str(e).splitlines()[0]}); {prepare}") from None


def train_dataset(image_set: ImageSet, *, global_batch: int, seed: int, process_index: int,
                  process_count: int):
  """An endless, checkpointable grain stream of this process's rows of each global batch.

  Same order rules as the text pipeline: the global batches depend only on `seed`.
  """
  return pipeline.train_dataset(image_set, global_batch=global_batch, seed=seed,
                                process_index=process_index, process_count=process_count)


def eval_batches(image_set: ImageSet, *, global_batch: int, max_examples: int,
                 process_index: int, process_count: int):
  """The first `max_examples` examples in fixed order, this process's rows, plus a `mask`.

  The last batch is padded by repeating the final example with `mask` 0.
  """
  for index, valid in pipeline.eval_indices(min(len(image_set), max_examples), global_batch,
                                            process_index, process_count):
    yield {**image_set.rows(index), "mask": valid}
