"""Scaling-law and capability-curve fits recover known parameters and Epoch AI's Chinchilla
replication."""

import csv
import json
import os

import numpy as np
import pytest

from scaling.analysis import fits

TRUTH = {"E": 1.7, "A": 400.0, "B": 410.0, "alpha": 0.34, "beta": 0.28}
EPOCH_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                         "chinchilla_epoch")
# Epoch AI, "Chinchilla scaling: a replication attempt" (data_analysis.ipynb @ 92258837):
# the grid-search L-BFGS-B fit and the 95% bootstrap intervals of their estimates.
EPOCH_FIT = {"A": 477.84171252965143, "B": 2143.8637880335505, "E": 1.817235504463726,
             "alpha": 0.34731265761033453, "beta": 0.3671826173946711}
EPOCH_OBJECTIVE = 0.0010182740346154362
EPOCH_CI = {"A": (285.214, 743.626), "B": (1042.357, 5810.344), "E": (1.769, 1.871),
            "alpha": (0.317, 0.373), "beta": (0.331, 0.415)}


def _chinchilla_grid():
  n, d = np.meshgrid(np.logspace(6, 10, 6), np.logspace(8, 12, 10))
  n, d = n.ravel(), d.ravel()
  loss = TRUTH["E"] + TRUTH["A"] * n ** -TRUTH["alpha"] + TRUTH["B"] * d ** -TRUTH["beta"]
  return n, d, loss


def _rel(a, b):
  return abs(a / b - 1)


def test_power_law_noise_free():
  n = np.logspace(4, 9, 12)
  truth = {"E": 0.5, "A": 30.0, "alpha": 0.3}
  fit = fits.fit_power_law(n, truth["E"] + truth["A"] * n ** -truth["alpha"])
  assert fit.form == "power_law" and fit.n_points == 12 and fit.ci == {}
  for k, v in truth.items():
    assert _rel(fit.params[k], v) < 1e-3, (k, fit.params[k])
  np.testing.assert_allclose(fit.predict(1e12), 0.5 + 30 * 1e12 ** -0.3, rtol=1e-4)


def test_power_law_bootstrap_brackets_estimate():
  n = np.logspace(4, 9, 12)
  rng = np.random.default_rng(0)
  loss = (0.5 + 30 * n ** -0.3) * np.exp(0.01 * rng.standard_normal(12))
  fit = fits.fit_power_law(n, loss, bootstrap=50)
  for k in ("E", "A", "alpha"):
    lo, hi = fit.ci[k]
    assert lo <= fit.params[k] <= hi, k


@pytest.mark.parametrize("E", [0.0, 1.0])
def test_the_asymptote_is_kept_only_where_the_data_support_it(E):
  """A law without an asymptote fitted with one puts E at its lower bound (with a
  near-zero-width interval): not a result. AICc keeps E where it is real and drops it
  where it is not; either way the exponent is recovered."""
  rng = np.random.default_rng(0)
  N = np.geomspace(1e4, 1e6, 8)
  L = (E + 50 * N ** -0.3) * np.exp(rng.normal(0, 0.01, N.size))
  fit = fits.select_power_law(N, L, bootstrap=50)
  assert fit.selection["chosen"] == ("with_E" if E else "without_E")
  assert fit.fixed == (() if E else ("E",)) and (fit.params["E"] == 0) == (E == 0)
  assert fit.params["alpha"] == pytest.approx(0.3, abs=0.01)
  assert set(fit.ci) == ({"A", "E", "alpha"} if E else {"A", "alpha"})
  assert json.loads(json.dumps(fit.to_dict()))["selection"] == fit.selection


def test_the_law_without_an_asymptote_has_calibrated_intervals():
  """95% intervals of A N^-alpha on 8 sizes with 1% scatter cover the true exponent in
  90-99% of 400 draws."""
  rng = np.random.default_rng(1)
  N = np.geomspace(1e4, 1e6, 8)
  covered = 0
  for _ in range(400):
    L = 50 * N ** -0.3 * np.exp(rng.normal(0, 0.01, N.size))
    low, high = fits.fit_pure_power_law(N, L, intervals=True).ci["alpha"]
    covered += low <= 0.3 <= high
  assert 0.90 <= covered / 400 <= 0.99, covered


def test_chinchilla_noise_free():
  n, d, loss = _chinchilla_grid()
  fit = fits.fit_chinchilla(n, d, loss)
  assert fit.n_points == 60
  for k, v in TRUTH.items():
    assert _rel(fit.params[k], v) < 1e-3, (k, fit.params[k])
  np.testing.assert_allclose(fit.predict(n, d), loss, rtol=1e-5)


def test_chinchilla_noisy_bootstrap_covers_truth():
  # Each 95% interval misses the truth for some noise draws; this fixed draw is a typical one.
  n, d, loss = _chinchilla_grid()
  rng = np.random.default_rng(0)
  noisy = loss * np.exp(0.01 * rng.standard_normal(loss.size))
  fit = fits.fit_chinchilla(n, d, noisy, bootstrap=100, seed=0)
  for k, v in TRUTH.items():
    lo, hi = fit.ci[k]
    assert lo <= v <= hi, (k, v, fit.ci[k])
    assert lo <= fit.params[k] <= hi, k
    assert _rel(fit.params[k], v) < 0.15, (k, fit.params[k])


def _epoch_points():
  path = os.path.join(EPOCH_DIR, "svg_extracted_data.csv")
  if not os.path.exists(path):
    pytest.skip(reason=f"Epoch AI's Chinchilla points not found at {path}")
  with open(path) as f:
    rows = list(csv.DictReader(f))
  n = np.array([float(r["Model Size"]) for r in rows])
  c = np.array([float(r["Training FLOP"]) for r in rows])
  loss = np.array([float(r["loss"]) for r in rows])
  d = c / (6 * n)  # Epoch's notebook derives tokens this way
  keep = loss < np.sort(loss)[-5]  # drop the 5 highest-loss points, as Epoch did
  return n[keep], d[keep], loss[keep]


def test_chinchilla_reproduces_epoch_replication():
  n, d, loss = _epoch_points()
  assert len(loss) == 240
  fit = fits.fit_chinchilla(n, d, loss)
  assert fit.loss <= EPOCH_OBJECTIVE * (1 + 1e-8)
  for k, (lo, hi) in EPOCH_CI.items():
    assert lo <= fit.params[k] <= hi, (k, fit.params[k])
    assert _rel(fit.params[k], EPOCH_FIT[k]) < 2e-3, (k, fit.params[k], EPOCH_FIT[k])


def test_compute_optimal_is_the_minimum_at_fixed_compute():
  fit = fits.Fit("chinchilla", dict(TRUTH))
  c = np.array([1e20, 1e23])
  n_opt, d_opt = fits.compute_optimal(fit, c)
  np.testing.assert_allclose(6 * n_opt * d_opt, c)
  for scale in (0.8, 1.25):
    n = n_opt * scale
    assert np.all(fit.predict(n, c / (6 * n)) > fit.predict(n_opt, d_opt))
  with pytest.raises(ValueError):
    fits.compute_optimal(fits.Fit("power_law", {"E": 1, "A": 1, "alpha": 1}), c)


def test_sigmoid_recovers_transition():
  x = np.linspace(3, 8, 11)
  rng = np.random.default_rng(1)
  y = 0.1 + 0.9 / (1 + np.exp(-3 * (x - 5.5))) + 0.01 * rng.standard_normal(11)
  fit = fits.fit_sigmoid(x, y, floor=0.1, bootstrap=100)
  assert fit.fixed == ("floor", "ceiling")
  assert abs(fit.params["x0"] - 5.5) < 0.05 and abs(fit.params["k"] - 3) < 0.3
  assert fit.ci["x0"][0] <= 5.5 <= fit.ci["x0"][1]
  free = fits.fit_sigmoid(x, y)  # floor fitted
  assert abs(free.params["floor"] - 0.1) < 0.03 and abs(free.params["x0"] - 5.5) < 0.1


def test_sigmoid_negative_slope_against_loss():
  loss = np.linspace(1.0, 3.0, 9)
  acc = 0.25 + 0.75 / (1 + np.exp(4 * (loss - 2.2)))
  fit = fits.fit_sigmoid(loss, acc, floor=0.25)
  assert abs(fit.params["x0"] - 2.2) < 1e-4 and abs(fit.params["k"] + 4) < 1e-3


def test_sigmoid_bootstrap_from_standard_errors():
  x = np.linspace(4, 7, 7)
  y = 1 / (1 + np.exp(-5 * (x - 5.4)))
  fit = fits.fit_sigmoid(x, y, floor=0.0, bootstrap=50, y_err=np.full(7, 0.02))
  lo, hi = fit.ci["x0"]
  assert lo < 5.4 < hi and hi - lo < 0.3


def test_linear_and_aic():
  fit = fits.fit_linear([1, 2, 3], [1, 3, 5])
  assert fit.params == pytest.approx({"intercept": -1.0, "slope": 2.0})
  assert fit.loss == pytest.approx(0, abs=1e-20)
  assert fits.aic(2.0, 10, 3) == pytest.approx(10 * np.log(0.2) + 6)
  assert json.loads(json.dumps(fit.to_dict()))["form"] == "linear"


def test_fits_run_blas_on_one_thread_and_restore_it():
  from threadpoolctl import threadpool_info

  def blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

  outside = blas_threads()
  inside = fits._one_blas_thread(blas_threads)()
  assert inside and set(inside) == {1}
  assert blas_threads() == outside
