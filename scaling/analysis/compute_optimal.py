"""Compute-optimal model size N*(C) and data D*(C) from a sweep of IsoFLOP runs, by two of the
three approaches of Hoffmann et al. (2022, "Training compute-optimal large language models"):

  Approach 2  for each compute budget, a parabola of final loss against log N through that
              budget's runs; its vertex is N*(C), and D*(C) = C / (6 N*). Power laws
              N* = k_N C^a and D* = k_D C^b are then fitted by least squares in log-log space.
  Approach 3  the parametric law L(N, D) = E + A/N^alpha + B/D^beta over all runs, fitted by
              Epoch AI's protocol (`fits.fit_chinchilla`; Besiroglu et al. 2024), whose
              minimum at fixed compute gives a = beta/(alpha+beta), b = alpha/(alpha+beta).

The two disagree when the law's form is wrong or the budgets are badly placed, which is why
both are reported. Bootstrap intervals: Approach 2 resamples runs within each budget and refits
every parabola and both power laws; Approach 3 resamples all runs and refits the law from the
full-data optimum, as Epoch did. Pure numpy/scipy.
"""

from __future__ import annotations

import dataclasses
import math

import matplotlib

matplotlib.use("Agg")  # Files only; no display needed.
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from scaling import files
from scaling.analysis import fits, plots  # noqa: E402

FLOPS_PER_TOKEN = 6.0  # training FLOPs per token per parameter (forward + backward)
_PARAMS = ("A", "B", "E", "alpha", "beta")  # column order of ParametricFit.draws


@dataclasses.dataclass
class BudgetMinimum:
  """One compute budget's runs, the parabola L = c2 x^2 + c1 x + c0 (x = log10 N) through
  them and its vertex; `ci` holds bootstrap intervals of N_opt, D_opt and L_opt."""
  budget: str
  C: float
  N: np.ndarray  # the budget's runs, sorted by N
  L: np.ndarray
  coeffs: tuple[float, float, float]
  N_opt: float
  D_opt: float
  L_opt: float
  minimum_inside_range: bool
  flops_per_token: float
  ci: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class IsoFlopFit:
  """Approach 2: the per-budget minima and the power laws N* = k_N C^a, D* = k_D C^b fitted
  through the minima of the budgets in `used`; `ci` holds bootstrap intervals."""
  minima: list[BudgetMinimum]
  a: float
  k_N: float
  b: float
  k_D: float
  used: list[str]
  ci: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
  n_boot: int = 0  # bootstrap draws that gave a fit (resamples can leave < 3 sizes)
  draws: np.ndarray | None = None  # (n_boot, 4): a, log k_N, b, log k_D

  def predict(self, C):
    """(N*, D*) of the fitted power laws at compute C."""
    C = np.asarray(C, float)
    return self.k_N * C ** self.a, self.k_D * C ** self.b


@dataclasses.dataclass
class ParametricFit:
  """Approach 3: a Chinchilla fit, its compute-optimal exponents a and b, and the bootstrap
  parameter draws (columns A, B, E, alpha, beta) behind their intervals."""
  fit: fits.Fit
  a: float
  b: float
  flops_per_token: float
  ci: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
  draws: np.ndarray | None = None

  def predict(self, C):
    """(N*, D*) minimising the fitted law at compute C = flops_per_token N D."""
    # fits.compute_optimal assumes C = 6 N D; rescaling C keeps D* = C / (k N*).
    return fits.compute_optimal(self.fit, np.asarray(C, float) * 6 / self.flops_per_token)

  def predict_ci(self, C) -> tuple[np.ndarray, np.ndarray] | None:
    """Bootstrap intervals of N*(C): arrays (lo, hi), or None without draws."""
    if self.draws is None or not len(self.draws):
      return None
    n = np.stack([fits.compute_optimal(fits.Fit("chinchilla", dict(zip(_PARAMS, row))),
                                       np.asarray(C, float) * 6 / self.flops_per_token)[0]
                  for row in self.draws])
    return _interval(n, axis=0)


def _interval(samples, axis=None):
  q = 50 * (1 - fits.CI_LEVEL)
  return np.percentile(samples, q, axis=axis), np.percentile(samples, 100 - q, axis=axis)


def _ci(samples) -> tuple[float, float]:
  samples = np.asarray(samples, float)
  samples = samples[np.isfinite(samples)]
  if not len(samples):
    return (math.nan, math.nan)
  lo, hi = _interval(samples)
  return float(lo), float(hi)


def isoflop_parabola(N, L) -> tuple[tuple[float, float, float], float, float, bool]:
  """Least-squares parabola of L against x = log10 N: (coeffs c2, c1, c0), N at its vertex,
  L there, and whether the vertex lies within the sampled sizes."""
  x, L = np.log10(np.asarray(N, float)), np.asarray(L, float)
  if len(np.unique(x)) < 3:
    raise ValueError("a parabola needs at least 3 distinct model sizes, got "
                     f"{len(np.unique(x))}")
  xc = x.mean()  # centred for conditioning; x ~ 6-12 makes x^2 and 1 nearly collinear
  c2, c1, c0 = np.polyfit(x - xc, L, 2)
  if not c2 > 0:
    raise ValueError(f"the parabola of loss against log N opens downward (c2 = {c2:.3g}): "
                     "no minimum; the sizes may all lie on one side of the optimum")
  x_opt = xc - c1 / (2 * c2)
  coeffs = (float(c2), float(c1 - 2 * c2 * xc), float(c2 * xc * xc - c1 * xc + c0))
  inside = bool(x.min() <= x_opt <= x.max())
  return coeffs, float(10.0 ** x_opt), float(c0 - c1 * c1 / (4 * c2)), inside


def _loglog(C, Y):
  """Least-squares line log Y = log k + p log C: (p, log k)."""
  p, logk = np.polyfit(np.log(C), np.log(Y), 1)
  return float(p), float(logk)


def _groups(N, C, L, budget, D):
  N, C, L = (np.asarray(v, float) for v in (N, C, L))
  D = None if D is None else np.asarray(D, float)
  labels = np.asarray(C if budget is None else budget)
  if not (len(N) == len(C) == len(L) == len(labels)) or (D is not None and len(D) != len(N)):
    raise ValueError("N, C, L, budget (and D) must have one entry per run")
  if not (np.all(N > 0) and np.all(C > 0) and np.all(np.isfinite(L))):
    raise ValueError("N and C must be positive and L finite")
  out = []
  for label in dict.fromkeys(labels.tolist()):  # first-seen order
    idx = np.flatnonzero(labels == label)
    idx = idx[np.argsort(N[idx], kind="stable")]
    out.append((str(label), idx))
  # Sort by the budgets' compute, which the power-law fit and figures expect.
  return sorted(out, key=lambda g: np.exp(np.log(C[g[1]]).mean())), N, C, L, D


def _flops_factor(flops_per_token, idx, N, C, D, n_opt):
  if flops_per_token is not None:
    return float(flops_per_token)
  if D is None:
    raise ValueError("flops_per_token=None infers it from C / (N D): pass D")
  # Per-run FLOPs per token per parameter (attention adds more at small N), read at N*.
  k = C[idx] / (N[idx] * D[idx])
  return float(np.exp(np.interp(np.log(n_opt), np.log(N[idx]), np.log(k))))


def fit_isoflop(N, C, L, budget=None, *, D=None,
                flops_per_token: float | None = FLOPS_PER_TOKEN, bootstrap: int = 0,
                seed: int = 0, fit_outside_range: bool = False) -> IsoFlopFit:
  """Approach 2: per-budget parabola minima, then N* = k_N C^a and D* = k_D C^b.

  `budget` labels the runs' budgets (None: runs with equal C form one); a budget's C is the
  geometric mean of its runs'. D* = C / (flops_per_token N*); flops_per_token=None reads it
  from the runs' C / (N D) at N*. Budgets whose minimum lies outside their sampled sizes are
  flagged and left out of the power laws unless `fit_outside_range`. `bootstrap` resamples
  runs within each budget and refits everything, giving intervals for a, b and each minimum.
  """
  groups, N, C, L, D = _groups(N, C, L, budget, D)
  minima = []
  for label, idx in groups:
    try:
      coeffs, n_opt, l_opt, inside = isoflop_parabola(N[idx], L[idx])
    except ValueError as e:
      raise ValueError(f"budget {label!r}: {e}") from None
    c = float(np.exp(np.log(C[idx]).mean()))
    k = _flops_factor(flops_per_token, idx, N, C, D, n_opt)
    minima.append(BudgetMinimum(label, c, N[idx], L[idx], coeffs, n_opt, c / (k * n_opt),
                                l_opt, inside, k))
  used = [i for i, m in enumerate(minima) if m.minimum_inside_range or fit_outside_range]
  if len(used) < 2:
    raise ValueError(f"{len(used)} budget(s) with a minimum inside their sampled sizes; the "
                     "power laws need 2 (add sizes around the optimum, or fit_outside_range)")

  def power_laws(c, n, d):
    return (*_loglog(c, n), *_loglog(c, d))

  cs = np.array([m.C for m in minima])
  n_opt = np.array([m.N_opt for m in minima])
  d_opt = np.array([m.D_opt for m in minima])
  a, log_kn, b, log_kd = power_laws(cs[used], n_opt[used], d_opt[used])
  out = IsoFlopFit(minima, a, math.exp(log_kn), b, math.exp(log_kd),
                   [minima[i].budget for i in used])
  if not bootstrap:
    return out
  rng = np.random.default_rng(seed)
  per_budget = np.full((bootstrap, len(minima), 3), np.nan)  # N_opt, D_opt, L_opt
  for t in range(bootstrap):
    for j, (_, idx) in enumerate(groups):
      r = rng.choice(idx, len(idx))
      try:
        _, n_opt, l_opt, _ = isoflop_parabola(N[r], L[r])
      except ValueError:  # too few distinct sizes drawn, or a flat/downward resample
        continue
      k = _flops_factor(flops_per_token, idx, N, C, D, n_opt)
      per_budget[t, j] = n_opt, minima[j].C / (k * n_opt), l_opt
  ok = np.all(np.isfinite(per_budget[:, used, 0]), axis=1)
  draws = np.array([power_laws(cs[used], per_budget[t, used, 0], per_budget[t, used, 1])
                    for t in np.flatnonzero(ok)]).reshape(-1, 4)
  for j, m in enumerate(minima):
    m.ci = {f: _ci(per_budget[:, j, i]) for i, f in enumerate(("N_opt", "D_opt", "L_opt"))}
  # No intervals for k_N, k_D: they are N*, D* extrapolated to C = 1 FLOP, wild on any draw
  # with an odd slope; the intervals of N*(C) at each budget carry that information.
  out.ci = {"a": _ci(draws[:, 0]), "b": _ci(draws[:, 2])}
  out.n_boot, out.draws = len(draws), draws
  return out


def fit_parametric(N, D, L, *, C=None, flops_per_token: float | None = FLOPS_PER_TOKEN,
                   bootstrap: int = 0, seed: int = 0,
                   n_starts: int | None = 32) -> ParametricFit:
  """Approach 3: `fits.fit_chinchilla` over all runs, a = beta/(alpha+beta) and
  b = alpha/(alpha+beta), with percentile intervals from `bootstrap` refits on resampled runs.

  flops_per_token=None uses the geometric mean of the runs' C / (N D) (C required).
  """
  N, D, L = (np.asarray(v, float) for v in (N, D, L))
  if flops_per_token is None:
    if C is None:
      raise ValueError("flops_per_token=None infers it from C / (N D): pass C")
    flops_per_token = float(np.exp(np.mean(np.log(np.asarray(C, float) / (N * D)))))
  fit = fits.fit_chinchilla(N, D, L, n_starts=n_starts)
  p = fit.params
  out = ParametricFit(fit, p["beta"] / (p["alpha"] + p["beta"]),
                      p["alpha"] / (p["alpha"] + p["beta"]), float(flops_per_token))
  if not bootstrap:
    return out
  # Each resample starts from the full-data optimum only, as Epoch's bootstrap did: the grid
  # search is what costs, and resamples stay in the optimum's basin.
  start = {"a": [math.log(p["A"])], "b": [math.log(p["B"])], "e": [math.log(p["E"])],
           "alpha": [p["alpha"]], "beta": [p["beta"]]}
  rng = np.random.default_rng(seed)
  draws = []
  for _ in range(bootstrap):
    idx = rng.integers(0, len(L), len(L))
    f = fits.fit_chinchilla(N[idx], D[idx], L[idx], grid=start, n_starts=None)
    row = [f.params[k] for k in _PARAMS]
    if np.all(np.isfinite(row)):
      draws.append(row)
  draws = np.array(draws).reshape(-1, 5)
  s = draws[:, 3] + draws[:, 4]
  out.ci = {k: _ci(draws[:, i]) for i, k in enumerate(_PARAMS)}
  out.ci.update(a=_ci(draws[:, 4] / s), b=_ci(draws[:, 3] / s))
  out.draws = draws
  return out


def compute_optimal_block(iso: IsoFlopFit, parametric: ParametricFit | None = None) -> dict:
  """The JSON-ready `compute_optimal` block: per-budget minima and both approaches' N*(C),
  D*(C) there, both approaches' exponents with intervals, and the Chinchilla parameters."""
  cs = np.array([m.C for m in iso.minima])
  n2, d2 = iso.predict(cs)
  n2_ci = None
  if iso.draws is not None and len(iso.draws):
    # In logs: k_N alone can overflow on a draw with an odd slope, k_N C^a cannot.
    n2_ci = _interval(np.exp(iso.draws[:, 1:2] + iso.draws[:, 0:1] * np.log(cs)[None]), axis=0)
  if parametric is not None:
    n3, d3 = parametric.predict(cs)
    n3_ci = parametric.predict_ci(cs)
  budgets = []
  for j, m in enumerate(iso.minima):
    row = {"budget": m.budget, "C": m.C, "n_runs": len(m.N), "N_opt": m.N_opt, "D_opt": m.D_opt,
           "L_opt": m.L_opt, "ci": {k: list(v) for k, v in m.ci.items()},
           "minimum_inside_range": m.minimum_inside_range, "used_in_fit": m.budget in iso.used,
           "sampled_N": [float(m.N.min()), float(m.N.max())], "parabola_log10N": list(m.coeffs),
           "flops_per_token": m.flops_per_token,
           "approach2": {"N_opt": n2[j], "D_opt": d2[j],
                         "N_opt_ci": None if n2_ci is None else [n2_ci[0][j], n2_ci[1][j]]}}
    if parametric is not None:
      row["approach3"] = {"N_opt": n3[j], "D_opt": d3[j],
                          "L_opt": parametric.fit.predict(n3[j], d3[j]),
                          "N_opt_ci": None if n3_ci is None else [n3_ci[0][j], n3_ci[1][j]]}
    budgets.append(row)
  block = {"ci_level": fits.CI_LEVEL, "budgets": budgets,
           "approach2": {"a": iso.a, "b": iso.b, "k_N": iso.k_N, "k_D": iso.k_D,
                         "ci": {k: list(v) for k, v in iso.ci.items()}, "n_boot": iso.n_boot,
                         "budgets_used": list(iso.used)}}
  if parametric is not None:
    block["approach3"] = {"a": parametric.a, "b": parametric.b,
                          "flops_per_token": parametric.flops_per_token,
                          "ci": {k: list(v) for k, v in parametric.ci.items()},
                          "n_boot": 0 if parametric.draws is None else len(parametric.draws),
                          "fit": parametric.fit.to_dict()}
  return files.jsonable(block)


def isoflop_figure(iso: IsoFlopFit, parametric: ParametricFit | None = None):
  """Left: loss against N per budget (runs, parabola, its minimum). Right: N*(C) against C,
  the minima with intervals and both approaches' power laws."""
  fig, (ax, ax_n) = plt.subplots(1, 2, figsize=(11.5, 4.4))
  for j, m in enumerate(iso.minima):
    color = f"C{j % 10}"
    ax.plot(m.N, m.L, "o", color=color, alpha=0.7, markersize=4, label=f"C = {m.C:.2g}",
            gid=f"runs:{m.budget}")
    x = np.linspace(np.log10(m.N.min()) - 0.1, np.log10(m.N.max()) + 0.1, 100)
    ax.plot(10.0 ** x, np.polyval(m.coeffs, x), "-", color=color, linewidth=1,
            gid=f"parabola:{m.budget}")
    # Hollow where the vertex is an extrapolation past the sampled sizes.
    ax.plot([m.N_opt], [m.L_opt], "*", color=color, markersize=11, gid=f"minimum:{m.budget}",
            markerfacecolor=color if m.minimum_inside_range else "none")
    lo, hi = m.ci.get("N_opt", (math.nan, math.nan))
    yerr = None
    if math.isfinite(lo):
      # Percentile intervals need not bracket the estimate; matplotlib rejects negative bars.
      yerr = [[max(m.N_opt - lo, 0.0)], [max(hi - m.N_opt, 0.0)]]
    ax_n.errorbar([m.C], [m.N_opt], yerr=yerr, fmt="o", color=color, capsize=2,
                  markerfacecolor=color if m.minimum_inside_range else "none")
  ax.set_xscale("log")
  plots.label(ax, "parameters N", "final held-out loss", "IsoFLOP profiles")

  cs = np.array([m.C for m in iso.minima])
  grid = np.geomspace(cs.min() / 3, cs.max() * 3, 100)
  ax_n.plot(grid, iso.predict(grid)[0], "-", color="k",
            label=f"approach 2: N* ~ C^{iso.a:.3f}", gid="approach2")
  if parametric is not None:
    ax_n.plot(grid, parametric.predict(grid)[0], "--", color="0.4",
              label=f"approach 3: N* ~ C^{parametric.a:.3f}", gid="approach3")
  ax_n.set_xscale("log")
  ax_n.set_yscale("log")
  plots.label(ax_n, "training compute C (FLOPs)", "compute-optimal parameters N*",
              "compute-optimal model size")
  fig.tight_layout()
  return fig
