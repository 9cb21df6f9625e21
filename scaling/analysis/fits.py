"""Fits of scaling laws and capability curves: a power law with an offset, the Chinchilla
form L(N, D) = E + A/N^alpha + B/D^beta, a sigmoid and a line, each with optional bootstrap
confidence intervals. Pure numpy/scipy.

The two loss laws are fitted as Hoffmann et al. (2022) did and Besiroglu et al. (2024,
"Chinchilla scaling: a replication attempt", Epoch AI) replicated: predict log L as a
log-sum-exp of the terms, sum the Huber loss (delta 1e-3) of the log-loss residuals over the
points, and minimise it with L-BFGS-B from a grid of starting points, keeping the best.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Sequence

import numpy as np
from scipy import optimize, special, stats

from threadpoolctl import ThreadpoolController

HUBER_DELTA = 1e-3
CI_LEVEL = 0.95

# Epoch AI's grid of starting points (np.arange semantics, end excluded): 5 * 5 * 5 * 6 * 6 =
# 4500 starts in the log-space parameters a = log A, b = log B, e = log E.
EPOCH_GRID = {
    "alpha": np.arange(0, 2.5, 0.5), "beta": np.arange(0, 2.5, 0.5),
    "e": np.arange(-1, 1.5, 0.5), "a": np.arange(0, 30, 5), "b": np.arange(0, 30, 5),
}

# L-BFGS-B's default stopping rule is relative to max(|f|, 1), i.e. absolute here, where the
# summed Huber loss is ~1e-3 or less; the best start is re-run with these to converge fully.
_TIGHT = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 500}


def _one_blas_thread(fn):
  """Run fn with BLAS limited to one thread. The optimisers make thousands of BLAS calls on
  5x5 matrices; OpenBLAS threads only add synchronisation, which made the fits ten times
  slower on a 2-core machine shared with other work. The loaded libraries are found once:
  finding them scans the process's shared objects, 2 ms a call and 600 calls per sweep."""
  @functools.wraps(fn)
  def wrapped(*args, **kwargs):
    with _blas().limit(limits=1, user_api="blas"):
      return fn(*args, **kwargs)
  return wrapped


@functools.cache
def _blas() -> ThreadpoolController:
  return ThreadpoolController()


@dataclasses.dataclass
class Fit:
  """A fitted curve: its form, parameters, bootstrap intervals (empty without bootstrap), the
  minimised loss (summed Huber loss of log residuals, or residual sum of squares) and the
  number of points it was fitted to."""
  form: str  # 'power_law' | 'chinchilla' | 'sigmoid' | 'linear'
  params: dict[str, float]
  ci: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
  loss: float = float("nan")
  n_points: int = 0
  fixed: tuple[str, ...] = ()  # parameters held at given values, not fitted
  selection: dict = dataclasses.field(default_factory=dict)  # how this form was chosen

  def predict(self, *x):
    """Evaluate the fitted curve: predict(N) for a power law, predict(N, D) for Chinchilla,
    predict(x) for a sigmoid or a line."""
    p = self.params
    if self.form == "power_law":
      return p["E"] + p["A"] * np.asarray(x[0], float) ** -p["alpha"]
    if self.form == "chinchilla":
      n, d = (np.asarray(v, float) for v in x)
      return p["E"] + p["A"] * n ** -p["alpha"] + p["B"] * d ** -p["beta"]
    if self.form == "sigmoid":
      z = p["k"] * (np.asarray(x[0], float) - p["x0"])
      return p["floor"] + (p["ceiling"] - p["floor"]) * special.expit(z)
    if self.form == "linear":
      return p["intercept"] + p["slope"] * np.asarray(x[0], float)
    raise ValueError(f"unknown form {self.form!r}")

  def to_dict(self) -> dict:
    """A JSON-serialisable copy."""
    return {"form": self.form, "params": {k: float(v) for k, v in self.params.items()},
            "ci": {k: [float(lo), float(hi)] for k, (lo, hi) in self.ci.items()},
            "loss": float(self.loss), "n_points": int(self.n_points), "fixed": list(self.fixed),
            **({"selection": dict(self.selection)} if self.selection else {})}


def aic(rss: float, n: int, k: int) -> float:
  """Akaike information criterion of a least-squares fit with k parameters to n points."""
  return n * np.log(rss / n) + 2 * k


def aicc(rss: float, n: int, k: int) -> float:
  """AIC with the small-sample correction 2k(k+1)/(n-k-1); infinite when n <= k + 1."""
  return aic(rss, n, k) + (2 * k * (k + 1) / (n - k - 1) if n > k + 1 else np.inf)


# --- log-sum-exp laws -------------------------------------------------------------------
# theta = [c_1 .. c_m, e, p_1 .. p_m] and log L_hat = LSE(c_j - p_j log X_j, e); for
# Chinchilla that is Epoch's order [a, b, e, alpha, beta].


def _huber(r, delta):
  ar = np.abs(r)
  return np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta))


def _terms(theta, logx):
  """Terms of the log-sum-exp for a batch of parameter vectors: (..., m + 1, n)."""
  m = logx.shape[0]
  c, e, p = theta[..., :m, None], theta[..., m:m + 1, None], theta[..., m + 1:, None]
  power = c - p * logx
  return np.concatenate([power, np.broadcast_to(e, power.shape[:-2] + (1, logx.shape[1]))],
                        axis=-2)


def _lse(t):
  """log-sum-exp over axis -2 and the softmax weights; scipy's logsumexp costs several times
  more per call on these small arrays, and the optimiser calls this thousands of times."""
  m = t.max(axis=-2, keepdims=True)
  w = np.exp(t - m)
  s = w.sum(axis=-2, keepdims=True)
  return (m + np.log(s))[..., 0, :], w / s


def _batch_objective(thetas, logx, logy, delta):
  """Summed Huber loss for each row of thetas, without gradients (grid screening)."""
  pred, _ = _lse(_terms(thetas, logx))
  return _huber(pred - logy, delta).sum(-1)


def _objective(theta, logx, logy, delta):
  """Summed Huber loss of the log residuals and its gradient."""
  pred, w = _lse(_terms(theta, logx))  # w: d pred / d (each term)
  r = pred - logy
  g = np.clip(r, -delta, delta)  # Huber derivative
  gw = w @ g
  m = logx.shape[0]
  grad = np.concatenate([gw[:m], gw[m:], -(w[:m] * logx) @ g])
  return _huber(r, delta).sum(), grad


def _minimize(theta0, args, options=None):
  return optimize.minimize(_objective, np.asarray(theta0, float), args=args, jac=True,
                           method="L-BFGS-B", options=options)


def _fit_lse(logx, logy, grid, delta, n_starts):
  """Best of L-BFGS-B runs from the grid; with n_starts, only from the n_starts grid points
  of lowest initial objective (all of them when None)."""
  args = (logx, logy, delta)
  starts = grid
  if n_starts is not None and n_starts < len(grid):
    starts = grid[np.argsort(_batch_objective(grid, *args), kind="stable")[:n_starts]]
  best = None
  for theta0 in starts:
    res = _minimize(theta0, args)
    if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
      best = res
  polished = _minimize(best.x, args, _TIGHT)
  return polished if polished.fun <= best.fun else best


def _bootstrap_lse(logx, logy, theta, delta, n_boot, seed):
  """Refits on resampled points, each started from the full-data optimum."""
  rng = np.random.default_rng(seed)
  n = logy.shape[0]
  out = []
  for _ in range(n_boot):
    idx = rng.integers(0, n, n)
    res = _minimize(theta, (logx[:, idx], logy[idx], delta), _TIGHT)
    if np.all(np.isfinite(res.x)):
      out.append(res.x)
  return np.array(out)


def _percentile_ci(samples: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
  q = 50 * (1 - CI_LEVEL)
  return {k: (float(np.percentile(v, q)), float(np.percentile(v, 100 - q)))
          for k, v in samples.items() if len(v)}


def _lse_fit(form, names, logx, L, grid, delta, bootstrap, seed, n_starts):
  logy = np.log(np.asarray(L, float))
  res = _fit_lse(logx, logy, grid, delta, n_starts)
  m = logx.shape[0]

  def natural(theta):  # log-space vector -> named parameters; exp of the coefficients
    theta = np.asarray(theta)
    vals = np.concatenate([np.exp(theta[..., :m + 1]), theta[..., m + 1:]], axis=-1)
    return {name: vals[..., i] for i, name in enumerate(names)}

  ci = {}
  if bootstrap:
    ci = _percentile_ci(natural(_bootstrap_lse(logx, logy, res.x, delta, bootstrap, seed)))
  params = {k: float(v) for k, v in natural(res.x).items()}
  return Fit(form, params, ci, float(res.fun), int(logy.shape[0]))


def _as_grid(grid: dict, keys: Sequence[str]) -> np.ndarray:
  return np.array(list(itertools.product(*(np.asarray(grid[k], float) for k in keys))))


@_one_blas_thread
def fit_power_law(N, L, *, huber_delta: float = HUBER_DELTA, bootstrap: int = 0,
                  seed: int = 0, grid: dict | None = None, n_starts: int | None = 32) -> Fit:
  """Fit L(N) = E + A * N^-alpha (Huber loss on log L, L-BFGS-B from a grid of starts);
  `bootstrap` resamples of the points give percentile intervals for E, A and alpha."""
  N, L = np.asarray(N, float), np.asarray(L, float)
  if grid is None:
    # Epoch's ranges, plus asymptotes below the smallest loss for losses far from ~1-4.
    e = np.concatenate([EPOCH_GRID["e"], np.log(L.min() * np.array([0.01, 0.5, 0.9]))])
    grid = {"a": EPOCH_GRID["a"], "e": e, "alpha": EPOCH_GRID["alpha"]}
  thetas = _as_grid(grid, ["a", "e", "alpha"])
  return _lse_fit("power_law", ["A", "E", "alpha"], np.log(N)[None], L, thetas,
                  huber_delta, bootstrap, seed, n_starts)


@_one_blas_thread
def fit_pure_power_law(N, L, *, intervals: bool = False) -> Fit:
  """Fit L(N) = A * N^-alpha, the power law without an asymptote (E held at 0): least
  squares on log L against log N. Its intervals are the exact ones of that regression
  (Student's t with n - 2 degrees of freedom, log-normal scatter): on 8 points a percentile
  bootstrap covered the truth in 88% of 200 draws, these in 94%."""
  logx, logy = np.log(np.asarray(N, float)), np.log(np.asarray(L, float))
  n = len(logy)
  fit = stats.linregress(logx, logy)
  A, alpha = float(np.exp(fit.intercept)), float(-fit.slope)
  ci = {}
  if intervals and n > 2:
    t = stats.t.ppf(0.5 + CI_LEVEL / 2, n - 2)
    ci = {"A": (float(np.exp(fit.intercept - t * fit.intercept_stderr)),
                float(np.exp(fit.intercept + t * fit.intercept_stderr))),
          "alpha": (alpha - t * float(fit.stderr), alpha + t * float(fit.stderr))}
  rss = float(np.sum((logy - fit.intercept - fit.slope * logx) ** 2))
  return Fit("power_law", {"A": A, "E": 0.0, "alpha": alpha}, ci, rss, n, ("E",))


AIC_MARGIN = 2.0  # the law with an asymptote must lower AICc by this much to be kept


def select_power_law(N, L, *, bootstrap: int = 0, seed: int = 0) -> Fit:
  """E + A N^-alpha, or A N^-alpha when the data do not support an asymptote: the three-
  parameter law is kept only if its AICc (on the log residuals) is lower by AIC_MARGIN.
  An E fitted at its lower bound (a vanishing asymptote, often with a zero-width interval)
  is how an unsupported asymptote shows; the selection is recorded on the fit."""
  N, L = np.asarray(N, float), np.asarray(L, float)
  full = fit_power_law(N, L)  # its bootstrap only if it is kept
  pure = fit_pure_power_law(N, L, intervals=bootstrap > 0)
  n = len(L)
  scores = {}
  for name, fit, k in (("with_E", full, 3), ("without_E", pure, 2)):
    rss = float(np.sum((np.log(L) - np.log(fit.predict(N))) ** 2))
    scores[name] = aicc(max(rss, 1e-300), n, k)
  keep_E = scores["with_E"] <= scores["without_E"] - AIC_MARGIN
  if not keep_E:
    chosen = pure
  elif bootstrap:  # the same optimum again, now with its intervals
    chosen = fit_power_law(N, L, bootstrap=bootstrap, seed=seed)
  else:
    chosen = full
  chosen.selection = {"aicc_with_E": float(scores["with_E"]),
                      "aicc_without_E": float(scores["without_E"]),
                      "chosen": "with_E" if keep_E else "without_E"}
  return chosen


@_one_blas_thread
def fit_chinchilla(N, D, L, *, huber_delta: float = HUBER_DELTA, bootstrap: int = 0,
                   seed: int = 0, grid: dict | None = None,
                   n_starts: int | None = 32) -> Fit:
  """Fit L(N, D) = E + A/N^alpha + B/D^beta by Epoch AI's protocol: log-space parameters,
  summed Huber loss (delta 1e-3) of log-loss residuals, L-BFGS-B from EPOCH_GRID, best kept.

  `n_starts` runs L-BFGS-B only from the grid points of lowest initial objective (None: from
  all 4500, about 30 s). On Epoch's 240 points the full grid gives objective 0.00101827402
  (A=477.8, B=2143.4, E=1.8172, alpha=0.34731, beta=0.36717; Epoch's notebook: 0.00101827403,
  477.8, 2143.9, 1.8172, 0.34731, 0.36718); 349 of the 4500 starts reach it, among them the
  start of lowest initial objective, and the default 32 starts give the same objective to
  1e-11 and the same parameters to 1e-4 (relative; the Huber objective is that flat).
  Bootstrap resamples are refitted from the full-data optimum, as Epoch refitted theirs from
  one starting point.
  """
  N, D, L = (np.asarray(v, float) for v in (N, D, L))
  thetas = _as_grid(EPOCH_GRID if grid is None else grid, ["a", "b", "e", "alpha", "beta"])
  return _lse_fit("chinchilla", ["A", "B", "E", "alpha", "beta"],
                  np.log(np.stack([N, D])), L, thetas, huber_delta, bootstrap, seed, n_starts)


def compute_optimal(fit: Fit, C):
  """Compute-optimal (N_opt, D_opt) for training compute C = 6 N D under a Chinchilla fit:
  G = (alpha A / (beta B))^(1/(alpha+beta)), N_opt = G (C/6)^(beta/(alpha+beta))."""
  if fit.form != "chinchilla":
    raise ValueError(f"compute_optimal needs a chinchilla fit, not {fit.form!r}")
  p = fit.params
  s = p["alpha"] + p["beta"]
  g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / s)
  n_opt = g * (np.asarray(C, float) / 6) ** (p["beta"] / s)
  return n_opt, np.asarray(C, float) / (6 * n_opt)


# --- capability curves --------------------------------------------------------------------


def _sigmoid_once(x, y, floor, ceiling, starts, bounds, n_best=6):
  """Least-squares sigmoid from the n_best of the given starts with the lowest initial
  residuals; returns (params vector, rss)."""
  free_floor, free_ceiling = floor is None, ceiling is None

  def unpack(v):
    lo = v[2] if free_floor else floor
    hi = v[2 + free_floor] if free_ceiling else ceiling
    return v[0], v[1], lo, hi

  def resid(v):
    x0, k, lo, hi = unpack(v)
    return lo + (hi - lo) * special.expit(k * (x - x0)) - y

  def jac(v):
    x0, k, lo, hi = unpack(v)
    s = special.expit(k * (x - x0))
    ds = (hi - lo) * s * (1 - s)
    cols = [-k * ds, (x - x0) * ds]
    if free_floor:
      cols.append(1 - s)
    if free_ceiling:
      cols.append(s)
    return np.stack(cols, axis=1)

  starts = np.clip(np.asarray(starts, float), bounds[0] + 1e-9, bounds[1] - 1e-9)
  if len(starts) > n_best:  # refine only the starts that already fit best
    costs = [np.sum(resid(v0) ** 2) for v0 in starts]
    starts = starts[np.argsort(costs, kind="stable")[:n_best]]
  best = None
  for v0 in starts:  # strictly inside the bounds, as 'trf' requires
    res = optimize.least_squares(resid, v0, jac=jac, bounds=bounds, method="trf")
    if best is None or res.cost < best.cost:
      best = res
  return best.x, 2 * best.cost


@_one_blas_thread
def fit_sigmoid(x, y, *, floor: float | None = None, ceiling: float | None = 1.0,
                bootstrap: int = 0, seed: int = 0, y_err=None) -> Fit:
  """Least-squares fit of y = floor + (ceiling - floor) * sigmoid(k (x - x0)); k may be
  negative (x a loss). `floor` / `ceiling` None are fitted, numbers are held fixed (chance
  level, 1.0). Bootstrap resamples points, or with `y_err` (standard errors per point)
  redraws y ~ Normal(y, y_err) at the same x, to give intervals for x0, k and free levels."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  xs = np.unique(x)
  if len(xs) < 2:
    raise ValueError("a sigmoid needs at least 2 distinct x values")
  span = xs[-1] - xs[0]
  kmax = 100.0 / np.diff(xs).min()  # a step between the closest sizes is sharp enough
  names = ["x0", "k"] + ["floor"] * (floor is None) + ["ceiling"] * (ceiling is None)
  lo = np.array([xs[0] - span, -kmax] + [-np.inf] * (len(names) - 2))
  hi = np.array([xs[-1] + span, kmax] + [np.inf] * (len(names) - 2))
  levels = [y.min()] * (floor is None) + [y.max()] * (ceiling is None)
  starts = [[x0, s * k / span, *levels] for x0 in np.linspace(xs[0], xs[-1], 5)
            for k in (2.0, 8.0, 32.0) for s in (1, -1)]
  v, rss = _sigmoid_once(x, y, floor, ceiling, starts, (lo, hi))

  def named(v):
    out = dict(zip(names, v))
    out.setdefault("floor", floor)
    out.setdefault("ceiling", ceiling)
    return out

  ci = {}
  if bootstrap:
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(bootstrap):
      if y_err is not None:
        xb, yb = x, y + np.asarray(y_err, float) * rng.standard_normal(len(y))
      else:
        idx = rng.integers(0, len(x), len(x))
        xb, yb = x[idx], y[idx]
        if len(np.unique(xb)) < 2:
          continue
      # Started from the full-data optimum only: extra starts (the transition at each size)
      # left the intervals unchanged on test curves at ten times the cost.
      draws.append(_sigmoid_once(xb, yb, floor, ceiling, [v], (lo, hi))[0])
    draws = np.array(draws)
    ci = _percentile_ci({n: draws[:, i] for i, n in enumerate(names)})
  fixed = tuple(n for n, val in (("floor", floor), ("ceiling", ceiling)) if val is not None)
  return Fit("sigmoid", {k: float(val) for k, val in named(v).items()}, ci, float(rss),
             len(y), fixed)


@_one_blas_thread
def fit_linear(x, y) -> Fit:
  """Least-squares line y = intercept + slope * x; loss is the residual sum of squares."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  slope, intercept = np.polyfit(x, y, 1)
  rss = float(np.sum((intercept + slope * x - y) ** 2))
  return Fit("linear", {"intercept": float(intercept), "slope": float(slope)}, {}, rss, len(y))
