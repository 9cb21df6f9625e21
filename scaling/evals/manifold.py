"""Sample-distribution metrics that separate fidelity from diversity, so mode collapse shows:

  precision, recall   Kynkaanniemi et al. (2019), "Improved Precision and Recall Metric for
                      Assessing Generative Models": each set's manifold is the union of balls
                      around its samples, of radius the distance to the k-th nearest other
                      sample; precision is the fraction of generated samples inside the real
                      manifold, recall the fraction of real samples inside the generated one.
  density, coverage   Naeem et al. (2020), "Reliable Fidelity and Diversity Metrics for
                      Generative Models": density counts how many real balls hold each
                      generated sample (divided by k), coverage is the fraction of real balls
                      holding any generated sample; both use only the real balls, so a few
                      outlying generated samples cannot inflate them.
  class coverage      the fraction of classes whose share among the generated samples (as a
                      classifier labels them) is at least the real share / tolerance; class
                      balance, the fraction within that factor of the real share either way.

A generator that reproduces one mode well has high precision but low recall, coverage and
class coverage; FD alone mixes the two. Features are arrays [N, F] from a classifier
elsewhere. Distances are computed in float64 in row chunks of CHUNK_BYTES, so 10k x 10k sets
need ~150 MB beyond float64 copies of the features. Pure numpy.
"""

from __future__ import annotations

import numpy as np

CHUNK_BYTES = 64 * 2 ** 20  # one chunk of the pairwise-distance matrix (float64)


def _as_features(feats_NF, name: str) -> np.ndarray:
  feats_NF = np.asarray(feats_NF, np.float64)  # float32 loses small distances between big norms
  if feats_NF.ndim != 2 or not len(feats_NF):
    raise ValueError(f"{name}: expected a non-empty [N, F] array, got shape {feats_NF.shape}")
  if not np.all(np.isfinite(feats_NF)):
    raise ValueError(f"{name}: features must be finite")
  return feats_NF


def _check_k(k: int, n: int, name: str):
  if not 1 <= k < n:
    raise ValueError(f"k = {k} needs 1 <= k < the number of {name} samples ({n})")


def _chunks(n_rows: int, n_cols: int, chunk_bytes: int):
  step = max(1, chunk_bytes // (8 * max(n_cols, 1)))
  for start in range(0, n_rows, step):
    yield slice(start, min(start + step, n_rows))


def _sq_dists(x_AF, y_BF, y_sq_B):
  """Squared Euclidean distances [A, B] via |x|^2 + |y|^2 - 2 x.y (one matmul)."""
  d_AB = x_AF @ y_BF.T
  d_AB *= -2  # in place: one chunk-sized buffer, not four
  d_AB += (x_AF * x_AF).sum(1)[:, None]
  d_AB += y_sq_B[None]
  return np.maximum(d_AB, 0, out=d_AB)  # rounding can leave tiny negatives


def knn_radii(feats_NF, k: int = 3, *, chunk_bytes: int = CHUNK_BYTES) -> np.ndarray:
  """Distance from each sample to its k-th nearest other sample (itself excluded)."""
  feats_NF = _as_features(feats_NF, "feats")
  n = len(feats_NF)
  _check_k(k, n, "")
  sq_N = (feats_NF * feats_NF).sum(1)
  radii_N = np.empty(n)
  for rows in _chunks(n, n, chunk_bytes):
    d_RN = _sq_dists(feats_NF[rows], feats_NF, sq_N)
    # Excluded by index, not by distance 0, so exact duplicates still count as neighbours.
    d_RN[np.arange(rows.stop - rows.start), np.arange(rows.start, rows.stop)] = np.inf
    radii_N[rows] = np.partition(d_RN, k - 1, axis=1)[:, k - 1]
  return np.sqrt(radii_N)


def precision_recall(feats_real_NF, feats_gen_MF, k: int = 3, *,
                     chunk_bytes: int = CHUNK_BYTES) -> dict:
  """Improved precision and recall (Kynkaanniemi et al. 2019) and density and coverage
  (Naeem et al. 2020) of generated features against real ones, with k-NN balls of order k."""
  feats_real_NF = _as_features(feats_real_NF, "feats_real")
  feats_gen_MF = _as_features(feats_gen_MF, "feats_gen")
  if feats_real_NF.shape[1] != feats_gen_MF.shape[1]:
    raise ValueError(f"feature sizes differ: real {feats_real_NF.shape[1]}, "
                     f"generated {feats_gen_MF.shape[1]}")
  n, m = len(feats_real_NF), len(feats_gen_MF)
  _check_k(k, n, "real")
  _check_k(k, m, "generated")
  # Compared squared, so the boundary test matches the radii's own arithmetic.
  r2_real_N = knn_radii(feats_real_NF, k, chunk_bytes=chunk_bytes) ** 2
  r2_gen_M = knn_radii(feats_gen_MF, k, chunk_bytes=chunk_bytes) ** 2
  sq_real_N = (feats_real_NF * feats_real_NF).sum(1)
  gen_in_real = 0  # generated samples inside some real ball (precision)
  balls_holding = 0  # (generated, real ball) pairs with the sample inside (density)
  real_covered_N = np.zeros(n, bool)  # real balls holding a generated sample (coverage)
  real_in_gen_N = np.zeros(n, bool)  # real samples inside some generated ball (recall)
  for rows in _chunks(m, n, chunk_bytes):
    d_RN = _sq_dists(feats_gen_MF[rows], feats_real_NF, sq_real_N)
    inside_real_RN = d_RN <= r2_real_N[None]
    gen_in_real += int(inside_real_RN.any(1).sum())
    balls_holding += int(inside_real_RN.sum())
    real_covered_N |= inside_real_RN.any(0)
    real_in_gen_N |= (d_RN <= r2_gen_M[rows, None]).any(0)
  return {"precision": gen_in_real / m, "recall": float(real_in_gen_N.mean()),
          "density": balls_holding / (k * m), "coverage": float(real_covered_N.mean()),
          "k": k, "n_real": n, "n_gen": m}


def class_coverage(labels_gen_M, real_shares_K, tolerance: float = 2.0) -> dict:
  """Fraction of classes (those with a real share > 0) not under-represented among the
  generated samples (share >= real / tolerance), the fraction within a factor `tolerance`
  either way (`class_balance`), and each class's sample share."""
  if not tolerance >= 1:
    raise ValueError(f"tolerance must be >= 1, got {tolerance}")
  real_K = np.asarray(real_shares_K, np.float64)
  if real_K.ndim != 1 or not len(real_K) or np.any(real_K < 0) or not real_K.sum() > 0:
    raise ValueError("real_shares_K: expected a 1-D array of non-negative shares, not all 0")
  real_K = real_K / real_K.sum()  # counts are accepted too
  labels_M = np.asarray(labels_gen_M)
  if labels_M.ndim != 1 or not len(labels_M) or not np.issubdtype(labels_M.dtype, np.integer):
    raise ValueError("labels_gen_M: expected a non-empty 1-D array of integer class labels")
  if labels_M.min() < 0 or labels_M.max() >= len(real_K):
    raise ValueError(f"labels_gen_M: labels must lie in [0, {len(real_K)})")
  share_K = np.bincount(labels_M, minlength=len(real_K)) / len(labels_M)
  present_K = real_K > 0  # a class absent from the real data cannot be covered
  # A relative slack so shares that equal a bound up to rounding count as inside.
  covered_K = present_K & (share_K * tolerance >= real_K * (1 - 1e-12))
  # Over-representing one class starves others, which then fail `covered`; `within` also
  # flags the over-represented class itself.
  within_K = covered_K & (share_K <= real_K * tolerance * (1 + 1e-12))
  n_present = present_K.sum()
  return {"class_coverage": float(covered_K.sum() / n_present),
          "class_balance": float(within_K.sum() / n_present),
          "shares": share_K.tolist(), "real_shares": real_K.tolist(),
          "covered": covered_K.tolist(), "within": within_K.tolist(),
          "tolerance": float(tolerance)}
