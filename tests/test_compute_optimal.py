"""IsoFLOP (Approach 2) and parametric (Approach 3) compute-optimal analysis recovers known
exponents, exact parabola minima and Epoch AI's Chinchilla refit, and flags bad budgets."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from scaling.analysis import compute_optimal as co
from scaling.analysis import fits
from tests.test_fits import EPOCH_FIT, EPOCH_OBJECTIVE, TRUTH, _epoch_points

A_TRUE = TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"])  # N* ~ C^a
B_TRUE = TRUTH["alpha"] / (TRUTH["alpha"] + TRUTH["beta"])  # D* ~ C^b


def _isoflop_runs(budgets=np.logspace(18, 22, 5), n_sizes=9, span=1.0, noise=0.01, seed=0):
  """Runs from the known Chinchilla law: per budget, sizes spaced evenly in log N over
  +-`span` decades around the true optimum, losses with multiplicative noise."""
  truth = fits.Fit("chinchilla", dict(TRUTH))
  n_opt, _ = fits.compute_optimal(truth, budgets)
  n = (n_opt[:, None] * np.logspace(-span, span, n_sizes)[None]).ravel()
  c = np.repeat(budgets, n_sizes)
  d = c / (6 * n)
  rng = np.random.default_rng(seed)
  loss = truth.predict(n, d) * np.exp(noise * rng.standard_normal(n.size))
  return n, d, c, loss, np.array([f"{v:.0e}" for v in c])


def _parabola_runs(vertices, budgets, centres=None, n_sizes=6, curvature=0.3):
  """Exact parabolas in log10 N with vertices at log10 N = vertices, one per budget, sampled
  over log10 N = centres -1 .. +0.8 (centres: the vertices)."""
  centres = vertices if centres is None else centres
  x = np.concatenate([np.linspace(m - 1, m + 0.8, n_sizes) for m in centres])
  vertex = np.repeat(vertices, n_sizes)
  c = np.repeat(budgets, n_sizes)
  return 10.0 ** x, c, 2.0 + curvature * (x - vertex) ** 2


def test_synthetic_exponents_both_approaches():
  n, d, c, loss, labels = _isoflop_runs()
  iso = co.fit_isoflop(n, c, loss, labels, bootstrap=200, seed=0)
  par = co.fit_parametric(n, d, loss, bootstrap=50, seed=0)
  assert iso.n_boot > 150 and len(par.draws) == 50
  assert all(m.minimum_inside_range for m in iso.minima) and len(iso.used) == 5
  for fit in (iso, par):
    assert abs(fit.a - A_TRUE) < 0.03, (type(fit).__name__, fit.a, fit.ci["a"])
    assert abs(fit.b - B_TRUE) < 0.03, (type(fit).__name__, fit.b, fit.ci["b"])
    for k, truth in (("a", A_TRUE), ("b", B_TRUE)):
      lo, hi = fit.ci[k]
      assert lo <= truth <= hi and lo <= getattr(fit, k) <= hi, (k, fit.ci[k])
  for m in iso.minima:
    lo, hi = m.ci["N_opt"]
    assert lo <= m.N_opt <= hi
    np.testing.assert_allclose(m.D_opt, m.C / (6 * m.N_opt))
  # Both approaches' N*(C) near the truth's at every budget (to within ~0.1 decade).
  cs = np.array([m.C for m in iso.minima])
  n_true, _ = fits.compute_optimal(fits.Fit("chinchilla", dict(TRUTH)), cs)
  for fit in (iso, par):
    n_pred, d_pred = fit.predict(cs)
    assert np.all(np.abs(np.log10(n_pred / n_true)) < 0.1), n_pred / n_true
    np.testing.assert_allclose(6 * n_pred * d_pred, cs, rtol=0.2 if fit is iso else 1e-9)

  block = co.compute_optimal_block(iso, par)
  block = json.loads(json.dumps(block, allow_nan=False))
  assert [b["budget"] for b in block["budgets"]] == [f"{v:.0e}" for v in np.logspace(18, 22, 5)]
  row = block["budgets"][2]
  assert row["minimum_inside_range"] and row["used_in_fit"] and row["n_runs"] == 9
  assert row["ci"]["N_opt"][0] <= row["N_opt"] <= row["ci"]["N_opt"][1]
  for approach in ("approach2", "approach3"):
    lo, hi = row[approach]["N_opt_ci"]
    assert lo <= row[approach]["N_opt"] <= hi
    assert block[approach]["a"] == pytest.approx(getattr(iso if approach == "approach2"
                                                         else par, "a"))
  assert block["approach3"]["fit"]["form"] == "chinchilla"
  assert block["approach3"]["ci"]["a"] == list(par.ci["a"])


def test_noise_free_parabola_minimum_is_exact():
  x = np.linspace(7.5, 9.5, 6)
  coeffs, n_opt, l_opt, inside = co.isoflop_parabola(10.0 ** x, 2.0 + 0.3 * (x - 8.3) ** 2)
  assert n_opt == pytest.approx(10 ** 8.3, rel=1e-9) and l_opt == pytest.approx(2.0, rel=1e-12)
  assert inside
  np.testing.assert_allclose(coeffs, [0.3, -2 * 0.3 * 8.3, 2.0 + 0.3 * 8.3 ** 2], rtol=1e-9)

  # Vertices on N* = 0.1 C^0.5 exactly: the power law is exact too.
  budgets = np.array([1e18, 1e20, 1e22])
  n, c, loss = _parabola_runs(np.log10(0.1 * budgets ** 0.5), budgets)
  iso = co.fit_isoflop(n, c, loss, flops_per_token=8.0)  # budgets from equal C
  assert [m.budget for m in iso.minima] == [str(v) for v in budgets]
  np.testing.assert_allclose([m.N_opt for m in iso.minima], 0.1 * budgets ** 0.5, rtol=1e-9)
  np.testing.assert_allclose([m.D_opt for m in iso.minima],
                             budgets / (8 * 0.1 * budgets ** 0.5), rtol=1e-9)
  assert iso.a == pytest.approx(0.5, abs=1e-9) and iso.k_N == pytest.approx(0.1, rel=1e-7)
  assert iso.b == pytest.approx(0.5, abs=1e-9) and iso.k_D == pytest.approx(1.25, rel=1e-7)

  # FLOPs per token read from the runs: C = 7 N D.
  iso7 = co.fit_isoflop(n, c, loss, D=c / (7 * n), flops_per_token=None)
  assert [m.flops_per_token for m in iso7.minima] == pytest.approx([7.0] * 3)
  np.testing.assert_allclose(iso7.predict(budgets)[1], budgets / (7 * 0.1 * budgets ** 0.5),
                             rtol=1e-7)
  with pytest.raises(ValueError, match="pass D"):
    co.fit_isoflop(n, c, loss, flops_per_token=None)


def test_degenerate_budgets_raise_or_flag():
  with pytest.raises(ValueError, match="at least 3 distinct"):
    co.isoflop_parabola([1e8, 1e8, 1e9, 1e9], [3.0, 3.1, 2.9, 2.8])
  x = np.linspace(8, 9, 5)
  with pytest.raises(ValueError, match="opens downward"):
    co.isoflop_parabola(10.0 ** x, 3.0 - 0.2 * (x - 8.5) ** 2)
  with pytest.raises(ValueError, match="opens downward"):  # a straight line has no minimum
    co.isoflop_parabola(10.0 ** x, 3.0 - 0.2 * x)

  budgets = np.array([1e18, 1e19, 1e20])
  vertices = np.array([8.0, 8.5, 10.5])
  n, c, loss = _parabola_runs(vertices, budgets, centres=[8.0, 8.5, 9.0])  # last: beyond
  labels = np.array(["small", "mid", "big"]).repeat(6)
  iso = co.fit_isoflop(n, c, loss, labels)
  assert [m.minimum_inside_range for m in iso.minima] == [True, True, False]
  assert iso.used == ["small", "mid"] and iso.a == pytest.approx(0.5, abs=1e-9)
  block = co.compute_optimal_block(iso)
  assert [b["used_in_fit"] for b in block["budgets"]] == [True, True, False]
  assert "approach3" not in block
  # The out-of-range vertex is still reported (10^10.5), but enters the fit only on request.
  assert iso.minima[2].N_opt == pytest.approx(10 ** 10.5, rel=1e-9)
  iso_all = co.fit_isoflop(n, c, loss, labels, fit_outside_range=True)
  assert iso_all.used == ["small", "mid", "big"] and iso_all.a > 0.6

  with pytest.raises(ValueError, match="1 budget"):
    co.fit_isoflop(n[6:], c[6:], loss[6:], labels[6:])
  with pytest.raises(ValueError, match="budget 'mid'.*at least 3"):
    keep = np.r_[0:6, 6:8, 12:18]
    co.fit_isoflop(n[keep], c[keep], loss[keep], labels[keep])
  with pytest.raises(ValueError, match="budget 'mid'.*opens downward"):
    co.fit_isoflop(n, c, np.where(labels == "mid", 5.0 - loss, loss), labels)
  with pytest.raises(ValueError, match="one entry per run"):
    co.fit_isoflop(n, c[:-1], loss, labels)


def test_parametric_reproduces_epoch_refit():
  n, d, loss = _epoch_points()
  par = co.fit_parametric(n, d, loss)
  assert par.fit.loss <= EPOCH_OBJECTIVE * (1 + 1e-8) and par.ci == {} and par.draws is None
  for k, v in EPOCH_FIT.items():
    assert abs(par.fit.params[k] / v - 1) < 2e-3, (k, par.fit.params[k], v)
  s = EPOCH_FIT["alpha"] + EPOCH_FIT["beta"]
  assert par.a == pytest.approx(EPOCH_FIT["beta"] / s, abs=1e-3)
  assert par.b == pytest.approx(EPOCH_FIT["alpha"] / s, abs=1e-3)
  c = np.array([1e21, 1e24])
  epoch = fits.compute_optimal(fits.Fit("chinchilla", EPOCH_FIT), c)
  for got, want in zip(par.predict(c), epoch):
    np.testing.assert_allclose(got, want, rtol=1e-3)
  # Runs whose C counts 8 FLOPs per token per parameter: the same law, N* at C * 6/8.
  par8 = co.fit_parametric(n, d, loss, C=8 * n * d, flops_per_token=None)
  assert par8.flops_per_token == pytest.approx(8.0)
  np.testing.assert_allclose(par8.predict(c)[0], par.predict(c * 6 / 8)[0], rtol=1e-9)


def test_figure_has_one_set_per_budget():
  n, d, c, loss, labels = _isoflop_runs(budgets=np.logspace(18, 21, 4), n_sizes=7)
  iso = co.fit_isoflop(n, c, loss, labels, bootstrap=20)
  par = co.fit_parametric(n, d, loss, n_starts=4)
  fig = co.isoflop_figure(iso, par)
  try:
    assert isinstance(fig, plt.Figure) and len(fig.axes) == 2
    curves, optimal = fig.axes
    by_gid = {line.get_gid(): line for line in curves.get_lines()}
    assert len(curves.get_lines()) == 3 * 4 == len(by_gid)
    for m in iso.minima:
      runs, parabola, minimum = (by_gid[f"{kind}:{m.budget}"]
                                 for kind in ("runs", "parabola", "minimum"))
      assert len(runs.get_xdata()) == 7 and runs.get_linestyle() == "None"
      assert runs.get_color() == parabola.get_color() == minimum.get_color()
      assert minimum.get_xdata()[0] == pytest.approx(m.N_opt)
    assert len({by_gid[f"runs:{m.budget}"].get_color() for m in iso.minima}) == 4
    assert curves.get_xscale() == "log"
    gids = {line.get_gid() for line in optimal.get_lines()}
    assert {"approach2", "approach3"} <= gids
    assert optimal.get_xscale() == optimal.get_yscale() == "log"
    # One errorbar set (the minimum and its interval) per budget.
    assert len(optimal.containers) == 4
  finally:
    plt.close(fig)
