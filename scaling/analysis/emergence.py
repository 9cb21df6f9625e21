"""Does a capability emerge abruptly or grow smoothly with model size? For one task, compare
smooth fits of each metric against log-parameters with a sigmoid, and compare how an
exact-match metric and a continuous metric change between adjacent sizes.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from scaling import files
from scaling.numbers import fmt, signed
from scaling.analysis import fits

MIN_SIZES_SIGMOID = 4  # below this a sigmoid cannot be told from a line
AIC_MARGIN = 2.0  # the sigmoid must beat the best smooth fit's criterion by this much
CRITERION = "aicc"
JUMP = 0.5  # a metric "jumps" when one step between adjacent sizes is half its whole change
ERROR_FLOOR = 1e-4  # error rates are clipped here before the log-space power-law fit
Z95 = 1.959964  # two-sided 95% normal quantile: CI width = 2 * Z95 * standard error


def per_size(x, v):
  """Distinct sizes (ascending) and the mean of v at each."""
  xs = np.unique(x)
  return xs, np.array([v[x == s].mean() for s in xs])


def _candidates(floor, ceiling, bounded, use_power_law, n_sizes):
  """Fitting functions (x, y) -> (predict, params) and their parameter counts."""
  out = {}

  def linear(xt, yt):
    f = fits.fit_linear(xt, yt)
    return f.predict, f.params

  out["linear"] = (linear, 2)
  if n_sizes >= MIN_SIZES_SIGMOID and bounded and use_power_law:
    def power_law(xt, yt):  # error rate 1 - y = E + A * N^-alpha, N = 10**x
      f = fits.fit_power_law(10.0 ** xt, np.clip(1 - yt, ERROR_FLOOR, None), n_starts=4)
      return (lambda xq: 1 - f.predict(10.0 ** np.asarray(xq, float))), f.params
    out["power_law"] = (power_law, 3)
  if n_sizes >= MIN_SIZES_SIGMOID:
    def sigmoid(xt, yt):
      f = fits.fit_sigmoid(xt, yt, floor=floor, ceiling=ceiling)
      return f.predict, f.params
    out["sigmoid"] = (sigmoid, 2 + (floor is None) + (ceiling is None))
  return out


def _score(fit_fn, k, x, y, mse_floor):
  """Parameters, RSS, AIC and AICc on all points, and the leave-one-out RMSE."""
  n = len(y)
  predict, params = fit_fn(x, y)
  rss = float(np.sum((predict(x) - y) ** 2))
  errors = []
  for i in range(n):
    keep = np.arange(n) != i
    if len(np.unique(x[keep])) < 2:
      continue
    errors.append(float(fit_fn(x[keep], y[keep])[0](x[i:i + 1])[0] - y[i]))
  loo = float(np.sqrt(np.mean(np.square(errors)))) if errors else float("nan")
  rss_eff = max(rss, n * mse_floor)
  return {"params": params, "k": k, "rss": rss, "aic": fits.aic(rss_eff, n, k),
          "aicc": fits.aicc(rss_eff, n, k), "loo_rmse": loo}


def _jump(xs, ym):
  """Largest absolute step between adjacent sizes as a fraction of the metric's range."""
  span = float(np.ptp(ym))
  if len(xs) < 3 or span <= 1e-12:
    return None
  steps = np.diff(ym)
  j = int(np.argmax(np.abs(steps)))
  return {"jumpiness": abs(steps[j]) / span, "index": j, "from_params": 10.0 ** xs[j],
          "to_params": 10.0 ** xs[j + 1], "change": float(steps[j]), "range": span}


def _metric_report(x, y, lo, hi, floor, ceiling, use_power_law, bootstrap, seed):
  """Fits, verdict and transition for one metric (the rule is in emergence_report)."""
  xs, ym = per_size(x, y)
  n_sizes = len(xs)
  bounded = bool(np.all((y >= 0) & (y <= 1)))
  if ceiling is None and bounded:
    ceiling = 1.0
  rep = {"values": y, "ci_low": lo, "ci_high": hi, "chance": floor, "ceiling": ceiling,
         "n_sizes": n_sizes, "fits": {}, "verdict": "insufficient", "best_smooth": None,
         "transition_params": None, "transition_ci": None, "transition_in_range": None,
         "step": _jump(xs, ym), "notes": []}
  if n_sizes < 2:
    rep["reason"] = f"{n_sizes} distinct size: nothing to fit"
    return rep
  # Residuals below 1e-4 of the metric's scale are below any measurement's resolution;
  # the floor also keeps a perfect fit's AIC finite.
  scale = 1.0 if bounded else max(float(np.ptp(y)), 1e-12)
  mse_floor = (1e-4 * scale) ** 2
  cands = _candidates(floor, ceiling, bounded, use_power_law, n_sizes)
  for name, (fn, k) in cands.items():
    if len(y) > k:
      rep["fits"][name] = _score(fn, k, x, y, mse_floor)
  smooth = {n: s for n, s in rep["fits"].items() if n != "sigmoid"}
  rep["best_smooth"] = min(smooth, key=lambda n: smooth[n][CRITERION]) if smooth else None
  if n_sizes < MIN_SIZES_SIGMOID:
    rep["reason"] = (f"only {n_sizes} distinct sizes: a sigmoid needs at least "
                     f"{MIN_SIZES_SIGMOID}, so abrupt and smooth growth cannot be told apart; "
                     "the linear fit is shown")
    return rep
  sig = rep["fits"].get("sigmoid")
  if sig is None or not np.isfinite(sig[CRITERION]):
    k = cands["sigmoid"][1]
    rep["reason"] = (f"{len(y)} points are too few to compare a {k}-parameter sigmoid "
                     f"({CRITERION.upper()} needs more than {k + 1}); give the chance level "
                     "or more sizes")
    return rep
  best = smooth[rep["best_smooth"]]
  best_loo = min((s["loo_rmse"] for s in smooth.values() if np.isfinite(s["loo_rmse"])),
                 default=float("inf"))
  sig_loo = sig["loo_rmse"] if np.isfinite(sig["loo_rmse"]) else float("inf")
  # The 10%-90% rise of the sigmoid, in decades of parameters.
  width = 2 * np.log(9) / max(abs(sig["params"]["k"]), 1e-12)
  sig["width_decades"] = width
  fits_better = best[CRITERION] - sig[CRITERION] >= AIC_MARGIN and sig_loo < best_loo
  abrupt = width <= (xs[-1] - xs[0]) / 2
  rep["verdict"] = "sigmoid" if fits_better and abrupt else "smooth"
  rep["reason"] = (f"sigmoid {CRITERION.upper()} {sig[CRITERION]:.1f} vs {rep['best_smooth']} "
                   f"{best[CRITERION]:.1f} (needs {fmt(AIC_MARGIN)} lower); leave-one-out RMSE "
                   f"sigmoid {fmt(sig_loo, 3)} vs best smooth {fmt(best_loo, 3)}; sigmoid "
                   f"rises over {fmt(width, 2)} decades (at most {fmt((xs[-1] - xs[0]) / 2, 2)}, "
                   "half the sizes' span, for a transition)")
  if fits_better and not abrupt:
    rep["notes"].append("the sigmoid fits better but rises too gradually to be a transition: "
                        "a smooth S-shaped curve")
  if rep["verdict"] == "sigmoid":
    sd = None if lo is None or hi is None else (np.asarray(hi) - np.asarray(lo)) / (2 * Z95)
    if sd is not None and not np.any(sd > 0):
      sd = None
    f = fits.fit_sigmoid(x, y, floor=floor, ceiling=ceiling, bootstrap=bootstrap, seed=seed,
                         y_err=sd)
    sig["ci"] = f.ci
    rep["transition_params"] = 10.0 ** f.params["x0"]
    if "x0" in f.ci:
      rep["transition_ci"] = [10.0 ** f.ci["x0"][0], 10.0 ** f.ci["x0"][1]]
      rep["notes"].append("transition interval from " + (
          "redrawing each size's value from its confidence interval" if sd is not None
          else "resampling the sizes with replacement"))
    rep["transition_in_range"] = bool(xs[0] <= f.params["x0"] <= xs[-1])
    if not rep["transition_in_range"]:
      rep["notes"].append("the fitted transition lies outside the measured sizes")
  return rep


def _compare(x, exact, cont, name_e, name_c):
  """Does the continuous metric move little across the step where exact match jumps?"""
  out = {"exact_metric": name_e, "continuous_metric": name_c}
  xs, ye = per_size(x, np.asarray(exact[0], float))
  _, yc = per_size(x, np.asarray(cont[0], float))
  je, jc = _jump(xs, ye), _jump(xs, yc)
  out["exact_jumpiness"] = je["jumpiness"] if je else None
  out["continuous_jumpiness"] = jc["jumpiness"] if jc else None
  if je is None or jc is None:
    out["continuous_rises_smoothly_where_exact_jumps"] = None
    out["reason"] = "needs at least 3 sizes and a change in both metrics"
    return out
  i = je["index"]
  share = abs(yc[i + 1] - yc[i]) / jc["range"]
  beyond_ci = None
  if exact[1] is not None and exact[2] is not None:
    _, half = per_size(x, (np.asarray(exact[2], float) - np.asarray(exact[1], float)) / 2)
    beyond_ci = bool(abs(je["change"]) > half[i] + half[i + 1])
  flag = je["jumpiness"] >= JUMP and share <= je["jumpiness"] / 2 and beyond_ci is not False
  out.update(jump_from_params=je["from_params"], jump_to_params=je["to_params"],
             continuous_share_at_jump=share, exact_jump_beyond_ci=beyond_ci,
             continuous_rises_smoothly_where_exact_jumps=bool(flag))
  out["reason"] = (f"{name_e} makes {je['jumpiness']:.0%} of its change between "
                   f"{fmt(je['from_params'], 3)} and {fmt(je['to_params'], 3)} parameters; "
                   f"{name_c} makes {share:.0%} of its change there")
  return out


def emergence_report(log_params: Sequence[float],
                     values_by_metric: Mapping[str, tuple],
                     chance: Mapping[str, float] | None = None, *,
                     exact_metric: str | None = None, continuous_metric: str | None = None,
                     ceiling: Mapping[str, float] | None = None, power_law: bool = True,
                     bootstrap: int = 200, seed: int = 0, task: str | None = None) -> dict:
  """Emergence report for one task as a JSON-serialisable dict.

  `log_params` are log10 parameter counts (repeats allowed, e.g. seeds); each metric maps to
  (means, ci_low, ci_high), the intervals may be None. Metrics in [0, 1] are taken as
  higher-is-better with ceiling 1 unless `ceiling` says otherwise; `chance` fixes the
  sigmoid's floor (otherwise fitted).

  Decision rule per metric: with at least 4 distinct sizes, fit a line in log-params, a
  power law in the error rate 1 - y (metrics in [0, 1]; `power_law`) and a sigmoid, each
  only when it has fewer parameters than points. Models are compared by AICc (AIC =
  n ln(RSS/n) + 2k, RSS on the metric, plus the small-sample term 2k(k+1)/(n-k-1), since
  sweeps have few sizes). The verdict is 'sigmoid' when the sigmoid's AICc is at least 2
  below the best smooth fit's, its leave-one-out RMSE is below every smooth fit's, and its
  10%-90% rise spans at most half the measured range of log-params (a wider S-curve is a
  smooth trend; a note says so); otherwise 'smooth'. 'insufficient' when there are fewer
  than 4 sizes (only the line is fitted) or too few points for the sigmoid's AICc. A sigmoid
  verdict reports the transition size 10**x0 with a bootstrap 95% interval (redrawing values
  from their intervals when given, else resampling sizes). On seven sizes over three decades
  with 0.02 noise, 40 of 40 draws of a line and of a smooth accelerating curve were called
  smooth and 40 of 40 of a sigmoid rising over 0.7 decades were called a sigmoid.

  With `exact_metric` and `continuous_metric`, jumpiness (largest step between adjacent
  sizes / whole range of per-size means) is compared: the continuous metric "rises smoothly
  where exact match jumps" when exact match's jumpiness is at least 0.5, its step exceeds
  the sum of the half-widths of its intervals at those two sizes (when given), and the
  continuous metric makes at most half that share of its change across the same step.
  """
  x = np.asarray(log_params, float)
  chance, ceiling = chance or {}, ceiling or {}
  report = {"task": task, "log_params": x, "n_sizes": len(np.unique(x)), "metrics": {},
            "comparison": None}
  for i, (name, vals) in enumerate(values_by_metric.items()):
    y = np.asarray(vals[0], float)
    lo = None if len(vals) < 2 or vals[1] is None else np.asarray(vals[1], float)
    hi = None if len(vals) < 3 or vals[2] is None else np.asarray(vals[2], float)
    report["metrics"][name] = _metric_report(x, y, lo, hi, chance.get(name),
                                             ceiling.get(name), power_law, bootstrap,
                                             seed + i)
  if exact_metric is not None and continuous_metric is not None:
    def triple(name):
      v = tuple(values_by_metric[name]) + (None, None)
      return v[0], v[1], v[2]
    report["comparison"] = _compare(x, triple(exact_metric), triple(continuous_metric),
                                    exact_metric, continuous_metric)
  return files.jsonable(report)


def measured_gap(log_sizes, ci) -> tuple[float, float] | None:
  """The measured sizes either side of an interval that holds none of them, else None."""
  if not ci or None in ci:
    return None
  sizes = np.unique(10.0 ** np.asarray(log_sizes, float))
  if np.any((sizes >= ci[0]) & (sizes <= ci[1])):
    return None
  below, above = sizes[sizes < ci[0]], sizes[sizes > ci[1]]
  return (float(below.max()) if below.size else None, float(above.min()) if above.size else None)


def format_report(report: dict) -> str:
  """A few lines of text for printing an emergence report."""
  xs = [v for v in report["log_params"] if v is not None]
  head = report["task"] or "task"
  lines = [f"{head}: {report['n_sizes']} sizes, "
           f"{fmt(10 ** min(xs), 3)} to {fmt(10 ** max(xs), 3)} parameters"]
  for name, m in report["metrics"].items():
    verdict = m["verdict"]
    if verdict == "smooth" and m["best_smooth"]:
      verdict += f" ({m['best_smooth']})"
    lines.append(f"  {name}: {verdict}; {m['reason']}")
    if m["transition_params"] is not None:
      ci = m["transition_ci"]
      ci_text = f" [95% CI {fmt(ci[0], 3)}, {fmt(ci[1], 3)}]" if ci and None not in ci else ""
      lines.append(f"    transition at {fmt(m['transition_params'], 3)} parameters{ci_text}")
      gap = measured_gap(xs, ci)
      if gap:
        lines.append(f"    no measured size lies in that interval (the nearest: "
                     f"{fmt(gap[0], 3)} and {fmt(gap[1], 3)}): it comes from the sigmoid's "
                     "shape, not from a measurement")
    if m["step"]:
      s = m["step"]
      lines.append(f"    jumpiness {s['jumpiness']:.2f} (largest step {signed(s['change'], 3)} "
                   f"between {fmt(s['from_params'], 3)} and {fmt(s['to_params'], 3)} parameters)")
    lines.extend(f"    note: {note}" for note in m["notes"])
  c = report["comparison"]
  if c:
    flag = c["continuous_rises_smoothly_where_exact_jumps"]
    answer = {True: "yes", False: "no", None: "undetermined"}[flag]
    lines.append(f"  {c['continuous_metric']} rises smoothly where {c['exact_metric']} "
                 f"jumps: {answer} ({c['reason']})")
  return "\n".join(lines)
