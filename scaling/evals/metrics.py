"""Metrics over model outputs: exact match, partial credit, teacher-forced scores, multiple
choice, chance baselines and bootstrap confidence intervals. Each per-item function returns
a float; aggregate a list of them with `summarize`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

DIGIT_CHANCE = 0.1  # a uniformly random digit matches any given digit


def _strip(x):
  return x.strip() if isinstance(x, str) else x


def exact_match(prediction: str, target: str) -> float:
  """1.0 when prediction and target are equal after stripping surrounding whitespace."""
  return float(prediction.strip() == target.strip())


# --- partial credit -------------------------------------------------------------------


def per_position_accuracy(predictions: Sequence, targets: Sequence) -> np.ndarray:
  """Accuracy at each position of the targets, aligned from the left; entry j is over the
  items whose target has more than j symbols. Strings are stripped first; a prediction too
  short to reach position j is wrong there; symbols past the target are not scored."""
  if len(predictions) != len(targets):
    raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
  predictions, targets = [_strip(p) for p in predictions], [_strip(t) for t in targets]
  width = max((len(t) for t in targets), default=0)
  correct, count = np.zeros(width), np.zeros(width)
  for p, t in zip(predictions, targets):
    for j, symbol in enumerate(t):
      count[j] += 1
      correct[j] += j < len(p) and p[j] == symbol
  return correct / count


def _align(x, align: str):
  x = _strip(x)
  if align == "right":
    return x[::-1]
  if align == "left":
    return x
  raise ValueError(f"align must be 'left' or 'right', not {align!r}")


def per_digit_accuracy(predictions: Sequence[str], targets: Sequence[str], *,
                       align: str = "right") -> np.ndarray:
  """Accuracy per digit place. With `align='right'` (answers written most significant digit
  first) entry 0 is the units digit, entry 1 the tens, ...; use `'left'` for answers
  written reversed. Chance is DIGIT_CHANCE."""
  return per_position_accuracy([_align(p, align) for p in predictions],
                               [_align(t, align) for t in targets])


def digit_accuracy(prediction: str, target: str, *, align: str = "right") -> float:
  """Fraction of the target's digit places the prediction gets right (see
  per_digit_accuracy for `align`)."""
  p, t = _align(prediction, align), _align(target, align)
  if not t:
    return float(not p)
  return sum(j < len(p) and p[j] == s for j, s in enumerate(t)) / len(t)


def edit_distance(a: Sequence, b: Sequence) -> int:
  """Levenshtein distance (insertions, deletions, substitutions) between two strings or two
  token lists."""
  previous = list(range(len(b) + 1))
  for i, x in enumerate(a, 1):
    current = [i]
    for j, y in enumerate(b, 1):
      current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
    previous = current
  return previous[-1]


def normalized_edit_distance(a: Sequence, b: Sequence) -> float:
  """Edit distance divided by the longer length: 0 identical, 1 nothing in common."""
  longest = max(len(a), len(b))
  return edit_distance(a, b) / longest if longest else 0.0


# --- teacher-forced scores ------------------------------------------------------------


def answer_logprob(token_logprobs: Sequence[float]) -> float:
  """Log-probability of the whole answer: the sum over its tokens."""
  return float(np.sum(token_logprobs))


def mean_token_prob(token_logprobs: Sequence[float]) -> float:
  """Mean probability the model gives each correct answer token."""
  return float(np.mean(np.exp(token_logprobs)))


def predicted_exact_match(token_logprobs: Sequence[float]) -> float:
  """Probability of sampling the exact answer, the product of its token probabilities;
  its mean over items is the exact match expected from sampling at temperature 1."""
  return float(np.exp(np.sum(token_logprobs)))


# --- multiple choice ------------------------------------------------------------------


def _is_correct(choice: int, correct_index) -> bool:
  return choice in np.atleast_1d(correct_index).tolist()


def multiple_choice_accuracy(choice_scores: Sequence[float], correct_index) -> float:
  """1.0 when the highest-scored choice (the first of equals, as np.argmax) is correct;
  `correct_index` is an index or a list of indices. BIG-bench's multiple_choice_grade
  when each choice scores 0 or 1."""
  return float(_is_correct(int(np.argmax(choice_scores)), correct_index))


def multiple_choice_grade(choice_scores: Sequence[float],
                          target_scores: Sequence[float]) -> float:
  """BIG-bench's multiple_choice_grade: the target score of the highest-scored choice."""
  return float(target_scores[int(np.argmax(choice_scores))])


def choice_probs(choice_logprobs: Sequence[float]) -> np.ndarray:
  """Log-likelihoods of the choices normalised into probabilities over the choices."""
  x = np.asarray(choice_logprobs, dtype=float)
  e = np.exp(x - x.max())
  return e / e.sum()


def brier_score(choice_probs: Sequence[float], correct_index: int) -> float:
  """Sum over choices of (p - onehot)^2: 0 when certain and right, 2 when certain and wrong
  (the multi-class Brier score, as in Schaeffer et al. 2023; lower is better)."""
  p = np.asarray(choice_probs, dtype=float)
  if p.ndim != 1 or abs(p.sum() - 1) > 1e-6 or (p < 0).any():
    raise ValueError("choice_probs must be one probability distribution over the choices "
                     "(normalise log-likelihoods with choice_probs())")
  onehot = np.zeros_like(p)
  onehot[correct_index] = 1.0
  return float(np.sum((p - onehot) ** 2))


def chance_multiple_choice(n_choices) -> float:
  """Expected accuracy of guessing uniformly: 1/n, averaged when given one n per item."""
  return float(np.mean(1.0 / np.asarray(n_choices, dtype=float)))


def chance_exact_match(target: str) -> float:
  """The chance that guessing each digit (1 in 10) and letter (1 in 26) of the target
  uniformly, with its length and punctuation given, matches it exactly: a generous floor
  for free-form answers (a model that knows the format does no worse)."""
  digits = sum(c.isdigit() for c in target)
  letters = sum(c.isalpha() for c in target)
  return float(10.0 ** -digits * 26.0 ** -letters)


def chance_brier(n_choices) -> float:
  """Brier score of the uniform distribution, (n-1)/n, averaged over items."""
  n = np.asarray(n_choices, dtype=float)
  return float(np.mean((n - 1) / n))


# --- uncertainty ----------------------------------------------------------------------


def bootstrap_ci(values: Sequence[float], *, n_resamples: int = 1000,
                 confidence: float = 0.95, seed: int = 0,
                 statistic: Callable = np.mean) -> tuple[float, float]:
  """Percentile-bootstrap interval of `statistic` over items resampled with replacement.
  `statistic` should accept `axis=`; others are applied resample by resample."""
  x = np.asarray(values, dtype=float)
  if x.ndim != 1:
    raise ValueError(f"values must be one number per item, got shape {x.shape}")
  if not len(x):
    return float("nan"), float("nan")
  rng = np.random.default_rng(seed)
  # Resample in chunks so that large sets stay within a few tens of MB.
  chunk = max(1, 4_000_000 // len(x))
  stats = []
  for start in range(0, n_resamples, chunk):
    sample = x[rng.integers(0, len(x), size=(min(chunk, n_resamples - start), len(x)))]
    try:
      stats.append(np.asarray(statistic(sample, axis=1), dtype=float))
    except TypeError:
      stats.append(np.array([statistic(row) for row in sample], dtype=float))
  tail = (1 - confidence) / 2
  low, high = np.quantile(np.concatenate(stats), [tail, 1 - tail])
  return float(low), float(high)


def summarize(values: Sequence[float], **bootstrap_kwargs) -> dict:
  """Mean, bootstrap interval (see bootstrap_ci) and count of per-item scores."""
  x = np.asarray(values, dtype=float)
  low, high = bootstrap_ci(x, **bootstrap_kwargs)
  return {"mean": float(x.mean()) if len(x) else float("nan"), "ci_low": low,
          "ci_high": high, "n": int(len(x))}


# --- calibration ----------------------------------------------------------------------

CALIBRATION_BINS = 10


def _bin_sums(confidence_RN: np.ndarray, correct_RN: np.ndarray, bins: int):
  """Per row and bin of equal width over [0, 1]: (count, confidence sum, correct sum)."""
  rows = confidence_RN.shape[0]
  bin_RN = np.minimum((confidence_RN * bins).astype(int), bins - 1)
  flat = (bin_RN + bins * np.arange(rows)[:, None]).ravel()
  sums = [np.bincount(flat, weights, rows * bins).reshape(rows, bins)
          for weights in (None, confidence_RN.ravel(), correct_RN.ravel())]
  return tuple(sums)


def _ece_rows(confidence_RN: np.ndarray, correct_RN: np.ndarray, bins: int) -> np.ndarray:
  _, conf, hits = _bin_sums(confidence_RN, correct_RN, bins)
  return np.abs(conf - hits).sum(axis=1) / confidence_RN.shape[1]


def _resampled_ece(draw, n_resamples: int, n: int, bins: int) -> np.ndarray:
  """ECE of `n_resamples` redrawn sets, `draw(rows)` making each chunk of them: chunks
  keep large sets within a few tens of MB."""
  chunk = max(1, 1_000_000 // n)
  return np.concatenate([_ece_rows(*draw(min(chunk, n_resamples - start)), bins)
                         for start in range(0, n_resamples, chunk)])


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[float], *,
                               bins: int = CALIBRATION_BINS) -> float:
  """ECE: over `bins` equal-width bins of confidence, the item-weighted mean of
  |accuracy - mean confidence| (Guo et al. 2017); 0 for a calibrated predictor."""
  c, y = np.asarray(confidence, float), np.asarray(correct, float)
  if c.shape != y.shape or c.ndim != 1 or not len(c):
    raise ValueError(f"need one confidence and one outcome per item, got {c.shape}, {y.shape}")
  if (c < 0).any() or (c > 1).any():
    raise ValueError("confidences must lie in [0, 1]")
  return float(_ece_rows(c[None], y[None], bins)[0])


def calibration(confidence: Sequence[float], correct: Sequence[float], *,
                bins: int = CALIBRATION_BINS, n_resamples: int = 1000, seed: int = 0) -> dict:
  """ECE with a 95% bootstrap interval over items, and `calibrated_high`: the 95th
  percentile of the ECE a perfectly calibrated predictor with these confidences shows
  (outcomes redrawn as Bernoulli(confidence); Bröcker & Smith 2007). The plug-in ECE is
  above 0 even then, so an ECE under `calibrated_high` is no evidence of miscalibration.
  `bins` holds the reliability diagram: per bin, items, mean confidence and accuracy."""
  c, y = np.asarray(confidence, float), np.asarray(correct, float)
  ece = expected_calibration_error(c, y, bins=bins)
  rng = np.random.default_rng(seed)

  def resampled_items(rows):
    pick_RN = rng.integers(0, len(c), size=(rows, len(c)))
    return c[pick_RN], y[pick_RN]

  def calibrated_outcomes(rows):
    return np.broadcast_to(c, (rows, len(c))), (rng.random((rows, len(c))) < c).astype(float)

  boot = _resampled_ece(resampled_items, n_resamples, len(c), bins)
  null = _resampled_ece(calibrated_outcomes, n_resamples, len(c), bins)
  count, conf, hits = _bin_sums(c[None], y[None], bins)
  with np.errstate(invalid="ignore", divide="ignore"):
    mean_conf, accuracy = conf[0] / count[0], hits[0] / count[0]
  return {"ece": ece, "ci_low": float(np.quantile(boot, 0.025)),
          "ci_high": float(np.quantile(boot, 0.975)),
          "calibrated_high": float(np.quantile(null, 0.95)), "n": int(len(c)),
          "bins": [{"low": k / bins, "high": (k + 1) / bins, "n": int(count[0, k]),
                    "confidence": None if not count[0, k] else float(mean_conf[k]),
                    "accuracy": None if not count[0, k] else float(accuracy[k])}
                   for k in range(bins)]}


# --- sampled programs -----------------------------------------------------------------


def pass_at_k(n: int, c: int, k: int) -> float:
  """Chen et al.'s (2021) unbiased pass@k from n samples of which c are correct: the chance
  that k of them drawn without replacement include a correct one, 1 - C(n-c, k) / C(n, k)."""
  if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (n, c, k)):
    raise ValueError(f"n, c and k must be integers, got {n!r}, {c!r}, {k!r}")
  n, c, k = int(n), int(c), int(k)
  if not 0 <= c <= n or not 1 <= k <= n:
    raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
  if n - c < k:
    return 1.0
  if c == 0:
    return 0.0
  # C(n-c, k) / C(n, k) is the product over i in (n-c, n] of (1 - k/i); summed as logs so
  # that neither huge binomials nor a long product of floats lose precision.
  i = np.arange(n - c + 1, n + 1, dtype=float)
  return float(-np.expm1(np.sum(np.log1p(-k / i))))
