"""Improved precision/recall, density/coverage and class coverage match brute-force k-NN
and see mode collapse."""

import numpy as np
import pytest

from scaling.evals import manifold


def _brute_force(real, gen, k):
  """Loop-and-sort reference: radii from each sample's sorted distances to the others."""
  def radii(x):
    out = []
    for i in range(len(x)):
      others = [np.linalg.norm(x[i] - x[j]) for j in range(len(x)) if j != i]
      out.append(np.sort(others)[k - 1])
    return np.array(out)

  r_real, r_gen = radii(real), radii(gen)
  d = np.array([[np.linalg.norm(g - r) for r in real] for g in gen])  # [gen, real]
  inside_real = d <= r_real[None]
  return {"precision": np.mean([inside_real[j].any() for j in range(len(gen))]),
          "recall": np.mean([(d[:, i] <= r_gen).any() for i in range(len(real))]),
          "density": inside_real.sum() / (k * len(gen)),
          "coverage": np.mean([inside_real[:, i].any() for i in range(len(real))])}


def _mixture(n_per_cluster, centres, rng):
  return np.concatenate([c + rng.standard_normal((n_per_cluster, centres.shape[1]))
                         for c in centres])


@pytest.mark.parametrize("k", [1, 2, 3, 5, 10])
def test_matches_brute_force(k):
  rng = np.random.default_rng(0)
  real = rng.standard_normal((40, 5))
  gen = 1.2 * rng.standard_normal((35, 5)) + 0.5  # wider and shifted: both metrics < 1
  want = _brute_force(real, gen, k)
  for chunk_bytes in (manifold.CHUNK_BYTES, 8 * 40 * 7):  # one chunk; chunks of 7 rows
    got = manifold.precision_recall(real, gen, k, chunk_bytes=chunk_bytes)
    assert {key: got[key] for key in want} == pytest.approx(want, abs=1e-12), chunk_bytes
    assert (got["k"], got["n_real"], got["n_gen"]) == (k, 40, 35)
  if k <= 3:  # larger balls hold every real sample
    assert 0 < want["precision"] < 1 and 0 < want["recall"] < 1


def test_knn_radii_excludes_only_itself():
  rng = np.random.default_rng(0)
  x = rng.standard_normal((30, 4)).astype(np.float32)
  want = np.sort(np.linalg.norm(x[:, None].astype(float) - x[None], axis=-1), axis=1)[:, 3]
  np.testing.assert_allclose(manifold.knn_radii(x, 3, chunk_bytes=8 * 30 * 4), want,
                             rtol=1e-9, atol=1e-12)
  dup = np.concatenate([x, x[:1]])  # a duplicate is a neighbour at distance 0
  r = manifold.knn_radii(dup, 1)
  assert r[0] == r[-1] == 0 and np.all(r[1:-1] > 0)


def test_identical_sets_score_one():
  x = np.random.default_rng(1).standard_normal((50, 6))
  got = manifold.precision_recall(x, x.copy())
  assert got["precision"] == got["recall"] == got["coverage"] == 1.0


def test_mode_collapse_lowers_recall_not_precision():
  rng = np.random.default_rng(2)
  centres = 10 * rng.standard_normal((10, 8))
  real = _mixture(50, centres, rng)
  collapsed = _mixture(200, centres[:1], rng)  # every sample from cluster 0
  got = manifold.precision_recall(real, collapsed, 3)
  # Precision below 1 only from cluster 0's tails, which 50 real samples cover thinly.
  assert got["precision"] > 0.8 and got["recall"] < 0.2, got
  assert got["coverage"] < 0.2, got
  # Same-distribution sets: E[coverage] ~ 1 - (n_real / (n_real + n_gen))^k = 0.875.
  healthy = manifold.precision_recall(real, _mixture(50, centres, rng), 3)
  assert healthy["precision"] > 0.8 and healthy["recall"] > 0.8, healthy
  assert healthy["coverage"] > 0.75 and 0.5 < healthy["density"] < 1.5, healthy


def test_class_coverage():
  real = np.full(10, 0.1)
  one = manifold.class_coverage(np.zeros(300, int), real)
  assert one["class_coverage"] == pytest.approx(0.1) and one["shares"][0] == 1.0
  assert one["covered"] == [True] + [False] * 9
  assert one["class_balance"] == 0.0 and not any(one["within"])  # 1.0 > 2 * 0.1
  even = manifold.class_coverage(np.arange(1000) % 10, real)
  assert even["class_coverage"] == even["class_balance"] == 1.0

  # Shares at exactly half and twice the real share count; a third of it does not.
  counts = [50, 10, 20, 20]  # real shares 0.2 0.2 0.2 0.4 of 100 samples
  labels = np.repeat(np.arange(4), counts)
  got = manifold.class_coverage(labels, [1, 1, 1, 2])  # counts are normalised
  assert got["real_shares"] == pytest.approx([0.2, 0.2, 0.2, 0.4])
  assert got["shares"] == pytest.approx([0.5, 0.1, 0.2, 0.2])
  assert got["covered"] == [True, True, True, True] and got["class_coverage"] == 1.0
  assert got["within"] == [False, True, True, True] and got["class_balance"] == 0.75
  assert manifold.class_coverage(labels, [1, 1, 1, 2], tolerance=3)["class_balance"] == 1.0
  third = manifold.class_coverage(np.repeat([0, 1, 2], [1, 3, 6]), [0.3, 0.3, 0.4])
  assert third["covered"] == [False, True, True] and third["within"] == [False, True, True]
  # A class absent from the real data is not counted.
  absent = manifold.class_coverage(np.repeat([0, 1], 5), [1, 1, 0])
  assert absent["class_coverage"] == absent["class_balance"] == 1.0


def test_invalid_inputs_raise():
  rng = np.random.default_rng(3)
  real, gen = rng.standard_normal((5, 3)), rng.standard_normal((8, 3))
  for k in (5, 6, 0):
    with pytest.raises(ValueError, match="k = "):
      manifold.precision_recall(real, gen, k)
  with pytest.raises(ValueError, match="generated"):
    manifold.precision_recall(gen, real, 5)
  with pytest.raises(ValueError, match="k = "):
    manifold.knn_radii(real, 5)
  with pytest.raises(ValueError, match="feature sizes differ"):
    manifold.precision_recall(real, gen[:, :2])
  with pytest.raises(ValueError, match=r"\[N, F\]"):
    manifold.precision_recall(real[0], gen)
  with pytest.raises(ValueError, match=r"labels must lie"):
    manifold.class_coverage([0, 3], [0.5, 0.5])
  with pytest.raises(ValueError, match="integer"):
    manifold.class_coverage([0.0, 1.0], [0.5, 0.5])
  with pytest.raises(ValueError, match="non-negative"):
    manifold.class_coverage([0, 1], [0.5, -0.5])
