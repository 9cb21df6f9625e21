"""Image datasets (digits builder, TFDS image sets, grain loaders) and image-quality metrics."""

import os

import ml_collections
import numpy as np
import pytest
import scipy.linalg
from sklearn.datasets import load_digits

from scaling.errors import ConfigError
from scaling.data import builders
from scaling.data import image_sets as images
from scaling.evals import image_features as metrics


def data_cfg(name="digits", image_size=8, channels=1, **extra):
  return ml_collections.ConfigDict(dict(kind="images", name=name, image_size=image_size,
                                        channels=channels, num_classes=10, data_dir="", seed=0,
                                        **extra))


@pytest.fixture(scope="module")
def digits8():
  return {split: images.load(data_cfg(), split) for split in images.SPLITS}


@pytest.fixture(scope="module")
def classifier8():
  return metrics.classifier_for(data_cfg())


def read_indices(image_size):
  builder = images.digits_builder(image_size)
  sources = {split: builder.as_data_source(split=split) for split in images.SPLITS}
  return {split: np.array([r["index"] for r in builders.read_all(source)])
          for split, source in sources.items()}


# --- the digits builder and loader ------------------------------------------------------


def test_digits_are_split_disjointly_and_completely(digits8):
  index = read_indices(8)
  assert len(index["train"]) + len(index["test"]) == 1797
  assert len(index["test"]) == round(1797 * images.TEST_FRACTION) == 270
  assert not set(index["train"]) & set(index["test"])
  assert set(index["train"]) | set(index["test"]) == set(range(1797))
  target = load_digits().target
  for split, image_set in digits8.items():
    assert len(image_set) == len(index[split])
    np.testing.assert_array_equal(image_set.labels_N, target[np.sort(index[split])])
    assert set(image_set.labels_N) == set(range(10))  # every class in both splits


def test_digits_are_sklearn_pixels_scaled_to_unit_range(digits8):
  index = read_indices(8)
  expected = np.round(load_digits().images * (255 / 16)) / 127.5 - 1
  for split, image_set in digits8.items():
    x = image_set.images_NHWC
    assert x.dtype == np.float32 and image_set.labels_N.dtype == np.int32
    assert x.shape == (len(image_set), 8, 8, 1)
    assert x.min() == -1.0 and x.max() == 1.0
    np.testing.assert_allclose(x[..., 0], expected[np.sort(index[split])], atol=1e-6)


def test_image_size_16_is_a_bilinear_upsampling(digits8):
  train16 = images.load(data_cfg(image_size=16), "train")
  assert train16.images_NHWC.shape == (1527, 16, 16, 1)
  np.testing.assert_array_equal(train16.labels_N, digits8["train"].labels_N)
  # Half-pixel-centred bilinear x2, edges clamped, written independently as a matrix.
  up = np.zeros((16, 8))
  for i in range(8):
    up[2 * i, i] += 0.75
    up[2 * i, max(i - 1, 0)] += 0.25
    up[2 * i + 1, i] += 0.75
    up[2 * i + 1, min(i + 1, 7)] += 0.25
  pixels = (digits8["train"].images_NHWC[..., 0] + 1) * 127.5
  expected = np.einsum("ai,nij,bj->nab", up, pixels, up) / 127.5 - 1
  # Stored as uint8: at most one level of rounding apart.
  assert np.abs(train16.images_NHWC[..., 0] - expected).max() <= 1 / 127.5 + 1e-6


def test_same_config_writes_the_same_data(digits8, tmp_path):
  again = images.load(data_cfg(), "test", data_dir=str(tmp_path))
  assert os.path.isdir(tmp_path / "sklearn_digits" / "size8")
  np.testing.assert_array_equal(again.images_NHWC, digits8["test"].images_NHWC)
  np.testing.assert_array_equal(again.labels_N, digits8["test"].labels_N)


def test_bad_configs_fail_with_one_line(tmp_path):
  cases = [(data_cfg(name="imagenet"), "config.data.name: unknown image dataset 'imagenet'"),
           (data_cfg(channels=3), "config.data.channels: digits has 1 channel"),
           (data_cfg(image_size=2), "config.data.image_size"),
           (data_cfg(name="mnist", image_size=28), "tfds build mnist --file_format=array_record")]
  for cfg, expected in cases:
    with pytest.raises(ConfigError) as e:
      images.load(cfg, "train", data_dir=str(tmp_path))
    assert expected in str(e.value) and "\n" not in str(e.value)
  with pytest.raises(ConfigError, match="config.data.name"):
    metrics.classifier_for(data_cfg(name="cifar10", image_size=32, channels=3),
                           data_dir=str(tmp_path))


def test_prepared_tfds_image_dataset_is_read_resized_and_scaled(tmp_path):
  """An array_record dataset in MNIST's on-disk format (PNG images), made from the digits."""
  import PIL.Image
  from tensorflow_datasets.image_classification import mnist as tfds_mnist
  digits = load_digits()
  pixels_N = images.resize_uint8(
      np.round(digits.images[:60] * (255 / 16)).astype(np.uint8)[..., None], 28)

  class DigitsAsMnist(tfds_mnist.MNIST, skip_registration=True):
    name = "mnist"

    def _split_generators(self, dl_manager):
      return {"train": self._generate_examples(range(40)),
              "test": self._generate_examples(range(40, 60))}

    def _generate_examples(self, rows):
      for i in rows:
        yield i, {"image": PIL.Image.fromarray(pixels_N[i, ..., 0]), "label": int(digits.target[i])}

  DigitsAsMnist(data_dir=str(tmp_path), file_format="array_record").download_and_prepare()
  test28 = images.load(data_cfg(name="mnist", image_size=28), "test", data_dir=str(tmp_path))
  # Records are written shuffled: match them to the source rows by content.
  source_row = {x.tobytes(): i for i, x in enumerate(pixels_N[40:60])}
  rows = [source_row[images.to_uint8(x).tobytes()] for x in test28.images_NHWC]
  assert sorted(rows) == list(range(20))
  np.testing.assert_array_equal(test28.labels_N, digits.target[40:60][rows])
  test16 = images.load(data_cfg(name="mnist", image_size=16), "test", data_dir=str(tmp_path))
  assert test16.images_NHWC.shape == (20, 16, 16, 1)
  np.testing.assert_array_equal(
      test16.images_NHWC, images.to_unit_range(images.resize_uint8(pixels_N[40:60][rows], 16)))


# --- grain loaders ----------------------------------------------------------------------


def take(ds, n):
  it = iter(ds)
  return [next(it) for _ in range(n)]


def numbered(n):
  """An image set whose image i is filled with the number i, so batches show their rows."""
  images_NHWC = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 8, 8, 1))
  return images.ImageSet(images_NHWC, np.arange(n, dtype=np.int32) % 10, 10, "numbered")


def rows_of(batches):
  return np.stack([b["images"][:, 0, 0, 0].astype(int) for b in batches])


def test_train_batches_are_deterministic_and_sharded_by_process(digits8):
  batch = take(images.train_dataset(digits8["train"], global_batch=32, seed=0, process_index=0,
                                    process_count=1), 1)[0]
  assert batch["images"].shape == (32, 8, 8, 1) and batch["images"].dtype == np.float32
  assert batch["labels"].shape == (32,) and batch["labels"].dtype == np.int32
  data = numbered(100)
  make = lambda seed, p, count: images.train_dataset(data, global_batch=20, seed=seed,
                                                     process_index=p, process_count=count)
  whole = rows_of(take(make(3, 0, 1), 10))  # two epochs
  np.testing.assert_array_equal(whole, rows_of(take(make(3, 0, 1), 10)))
  assert not (whole == rows_of(take(make(4, 0, 1), 10))).all()
  for epoch in (whole[:5], whole[5:]):  # each epoch is a permutation of the rows
    assert sorted(epoch.ravel()) == list(range(100))
  assert not (whole[:5] == whole[5:]).all()  # reshuffled per epoch
  for count in (2, 4):
    shards = [rows_of(take(make(3, p, count), 10)) for p in range(count)]
    for p in range(count):  # process p holds rows p, p + count, ... of every global batch
      np.testing.assert_array_equal(shards[p], whole[:, p::count])
    assert sorted(np.concatenate(shards, axis=1).ravel()) == sorted(whole.ravel())


def test_train_iterator_state_restores_position():
  make = lambda: iter(images.train_dataset(numbered(100), global_batch=16, seed=0,
                                           process_index=1, process_count=2))
  it = make()
  for _ in range(50):
    next(it)
  state = it.get_state()
  expected = [next(it) for _ in range(3)]
  fresh = make()
  fresh.set_state(state)
  for want in expected:
    got = next(fresh)
    np.testing.assert_array_equal(got["images"], want["images"])
    np.testing.assert_array_equal(got["labels"], want["labels"])


def test_eval_batches_cover_every_example_once(digits8):
  test = digits8["test"]
  seen = []
  for p in range(2):
    for batch in images.eval_batches(test, global_batch=64, max_examples=1000, process_index=p,
                                     process_count=2):
      assert batch["images"].shape == (32, 8, 8, 1)
      seen.extend(zip(batch["images"][batch["mask"] > 0], batch["labels"][batch["mask"] > 0]))
  assert len(seen) == len(test) == 270
  assert sorted(x.tobytes() + bytes([y]) for x, y in seen) == sorted(
      x.tobytes() + bytes([y]) for x, y in zip(test.images_NHWC, test.labels_N))


# --- distances between feature sets ------------------------------------------------------


def with_moments(rng, mean_D, var_D, n):
  """n points whose sample mean is exactly `mean_D` and sample covariance exactly diag(var_D)."""
  z = rng.standard_normal((n, len(mean_D)))
  q, _ = np.linalg.qr(z - z.mean(0))  # orthonormal, zero-mean columns
  return mean_D + q * np.sqrt((n - 1) * var_D)


def test_frechet_distance_matches_the_closed_form_for_diagonal_covariances():
  rng = np.random.default_rng(0)
  mean_a, mean_b = rng.normal(size=6), rng.normal(size=6)
  var_a, var_b = rng.uniform(0.1, 3, size=6), rng.uniform(0.1, 3, size=6)
  a, b = with_moments(rng, mean_a, var_a, 500), with_moments(rng, mean_b, var_b, 300)
  np.testing.assert_allclose(np.cov(a, rowvar=False), np.diag(var_a), atol=1e-10)
  expected = np.sum((mean_a - mean_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
  assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
  assert metrics.frechet_distance(b, a) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_matches_scipy_sqrtm_for_full_covariances():
  rng = np.random.default_rng(1)
  a = rng.normal(size=(400, 8)) @ rng.normal(size=(8, 8))
  b = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8)) + 0.5
  cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  expected = (np.sum((a.mean(0) - b.mean(0)) ** 2)
              + np.trace(cov_a + cov_b - 2 * scipy.linalg.sqrtm(cov_a @ cov_b).real))
  assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_of_a_set_with_itself_is_zero(digits8, classifier8):
  feats = classifier8.features(digits8["test"].images_NHWC)
  assert (feats.std(0) == 0).any()  # dead ReLU units: a singular covariance
  assert metrics.frechet_distance(feats, feats) < 1e-6 * np.trace(np.cov(feats, rowvar=False))
  x = np.random.default_rng(2).normal(size=(50, 100))  # fewer points than dimensions
  assert metrics.frechet_distance(x, x) < 1e-8


def test_kernel_distance_is_near_zero_for_one_distribution_and_positive_for_shifted():
  rng = np.random.default_rng(3)
  a, b = rng.normal(size=(600, 16)), rng.normal(size=(600, 16))
  same, same_std = metrics.kernel_distance(a, b, num_subsets=40, subset_size=150)
  shifted, shifted_std = metrics.kernel_distance(a, b + 0.5, num_subsets=40, subset_size=150)
  assert abs(same) < 2 * same_std
  assert shifted > 10 * shifted_std and shifted > 20 * abs(same)
  # A whole set against itself: every term of the estimator by hand, K = (x.y/D + 1)^3.
  k = (a @ a.T / 16 + 1) ** 3
  off_diagonal = (k.sum() - np.trace(k)) / (600 * 599)
  expected = 2 * off_diagonal - 2 * k.mean()  # = -(2/m)(mean diagonal - mean off-diagonal)
  self_kid, self_std = metrics.kernel_distance(a, a, num_subsets=3, subset_size=600)
  assert self_kid == pytest.approx(expected, rel=1e-9) and self_std < 1e-9 * abs(expected)
  assert -0.1 * shifted < self_kid < 0


# --- the classifier and the bundled metrics ----------------------------------------------


def test_classifier_is_accurate_and_cached(digits8, classifier8):
  test = digits8["test"]
  assert classifier8.accuracy >= 0.95
  accuracy = metrics.class_accuracy(classifier8, test.images_NHWC, test.labels_N)
  assert accuracy == classifier8.accuracy
  params = os.path.join(classifier8.directory, "params.npz")
  assert classifier8.directory.startswith(builders.default_data_dir())
  mtime = os.stat(params).st_mtime_ns
  again = metrics.classifier_for(data_cfg())  # loads: no retraining
  assert os.stat(params).st_mtime_ns == mtime and again.info == classifier8.info
  np.testing.assert_array_equal(again.features(test.images_NHWC),
                                classifier8.features(test.images_NHWC))
  assert classifier8.features(test.images_NHWC).shape == (270, metrics.FEATURES)


def test_classifier_at_image_size_16():
  clf = metrics.classifier_for(data_cfg(image_size=16))
  assert clf.accuracy >= 0.95
  assert clf.directory.endswith(f"digits-size16-v{metrics.VERSION}")


def test_real_images_score_far_better_than_noise(digits8, classifier8):
  train, test = digits8["train"], digits8["test"]
  noise = np.random.default_rng(4).uniform(-1, 1, test.images_NHWC.shape).astype(np.float32)
  real = metrics.image_metrics(classifier8, test.images_NHWC, test.labels_N, train.images_NHWC,
                               kid_subsets=20)
  fake = metrics.image_metrics(classifier8, noise, test.labels_N, train.images_NHWC, kid_subsets=20)
  assert set(real) == {"fd", "kid", "kid_std", "class_accuracy", "classifier_accuracy",
                       "num_generated", "num_real"}
  assert real["num_generated"] == 270 and real["num_real"] == 1527
  assert real["class_accuracy"] == classifier8.accuracy
  assert fake["class_accuracy"] < 0.3
  assert real["fd"] < fake["fd"] / 20
  assert abs(real["kid"]) < 3 * real["kid_std"] and fake["kid"] > 10 * fake["kid_std"]
  assert "class_accuracy" not in metrics.image_metrics(classifier8, noise[:10], None, noise[10:],
                                                       kid_subsets=2)
