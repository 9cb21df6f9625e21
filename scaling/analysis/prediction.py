"""Predicting a large model's capability from small ones, and where capabilities appear in loss.

`two_step_prediction` is the model-ladder method of Bhagia et al. (2024, "Establishing task
scaling laws via compute-efficient model ladders"): fit a task's loss against model size on
the small sizes of a sweep, fit the task's metric against that loss with a sigmoid, chain
the two to predict the larger sizes, and check the prediction against their measurements.
`loss_threshold` tests the finding of Du et al. (2024, "Understanding emergent abilities of
language models from the loss perspective") that a capability appears at the same
pre-training loss whatever the model size, over each size's training checkpoints.
`emergence_order` ranks tasks by the scale and the loss at which they appear.

Rows are those of the results table (`scaling.sweep.results`), one per evaluated checkpoint;
rows without `final` are final checkpoints. All reports are JSON-ready dicts whose `summary`
is a list of sentences.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from scaling import files
from scaling.numbers import fmt
from scaling.analysis import emergence, fits
from scaling.analysis.checkpoints import (by_size, chance as chance_of, completed, group_by,
                                          is_final, training_order)

NOISE_DRAWS = 20  # measurement-noise draws per bootstrap refit, for the prediction interval
MIN_SIZES = 3  # a three-parameter power law needs at least three distinct sizes


def _q(samples):
  """The two ends of a central CI_LEVEL percentile interval, over axis 0."""
  return np.percentile(samples, [50 * (1 - fits.CI_LEVEL), 50 * (1 + fits.CI_LEVEL)], axis=0)


def _fmt(v) -> str:
  return "-" if v is None or np.isnan(v) else fmt(v, 3)


def _ival(lo, hi) -> str:
  return f"[{_fmt(lo)}, {_fmt(hi)}]"


# --- the model ladder -----------------------------------------------------------------------


def _step1_form(finals) -> tuple[str, str]:
  """Chinchilla when some size was trained for several token counts, else a power law in N:
  with tokens a function of size (one recipe), D carries no information N does not."""
  tokens = group_by([r for r in finals if r.get("tokens")], "params")
  varied = all(r.get("tokens") for r in finals) and any(
      len({r["tokens"] for r in rs}) > 1 for rs in tokens.values())
  points = {(r["params"], r["tokens"]) for rs in tokens.values() for r in rs}
  if varied and len(points) > 5:
    return "chinchilla", "some sizes were trained for several token counts: L(N, D)"
  return "power_law", ("each size has one token count, so task loss is fitted against N "
                       "alone; the prediction holds for larger sizes trained the same way")


def _fit1(form: str, finals, start: fits.Fit | None = None) -> fits.Fit:
  """Task loss against N (or N and D); a bootstrap refit starts from the full-data optimum."""
  n = np.array([r["params"] for r in finals], float)
  loss = np.array([-r["metrics"]["_lp"][0] for r in finals], float)
  grid = None
  if start is not None:
    p = start.params
    grid = {"a": [math.log(p["A"])], "e": [math.log(p["E"])], "alpha": [p["alpha"]]}
    if form == "chinchilla":
      grid.update(b=[math.log(p["B"])], beta=[p["beta"]])
  kw = dict(grid=grid, n_starts=None) if grid else {}
  if form == "chinchilla":
    return fits.fit_chinchilla(n, [r["tokens"] for r in finals], loss, **kw)
  return fits.fit_power_law(n, loss, **kw)


def _predict1(fit: fits.Fit, n, d):
  return fit.predict(n, d) if fit.form == "chinchilla" else fit.predict(n)


def _xy(rows):
  return (np.array([-r["metrics"]["_lp"][0] for r in rows], float),
          np.array([r["metrics"]["_m"][0] for r in rows], float))


def _with_ci(fit: fits.Fit, samples: list[dict]) -> dict:
  out = fit.to_dict()
  free = [k for k in fit.params if k not in fit.fixed]
  if samples:
    out["ci"] = {k: _q([s[k] for s in samples]).tolist() for k in free}
  return out


def two_step_prediction(rows, task: str, subset: str, *, max_params: float,
                        metric: str = "exact_match", bootstrap: int = 200,
                        seed: int = 0) -> dict:
  """Predict `metric` for every size above `max_params` from the sizes up to it (the ladder):
  task loss (-answer_logprob) from size, then the metric from task loss; see module doc.

  Step 1 uses the ladder's final checkpoints (an intermediate checkpoint's loss is not that
  of a model trained to its token count); step 2 uses every evaluated ladder checkpoint, as
  Bhagia et al. did, with the sigmoid's floor at chance (0 if unknown) and ceiling 1.
  Intervals come from a bootstrap over the ladder's trials (size and seed, each with all its
  checkpoints), refitting both steps. `interval` is for one measurement: each refit's
  prediction is redrawn with the seed-to-seed scatter of step 1 (log-normal, from its
  residuals) and quasi-binomial noise of the metric (dispersion from step 2's residuals, at
  least that implied by the rows' own confidence intervals);
  `mean_interval` is for the expected metric alone."""
  name, lp = f"{task}/{subset}/{metric}", f"{task}/{subset}/answer_logprob"
  # Shallow copies with the two metrics under short keys keep the fitting code readable.
  done = [{**r, "metrics": {"_m": r["metrics"][name], "_lp": r["metrics"][lp]}}
          for r in completed(rows) if name in r["metrics"] and lp in r["metrics"]]
  ladder = [r for r in done if r["params"] <= max_params]
  finals = [r for r in ladder if is_final(r)]
  floor = chance_of(rows, name)
  out = {"task": task, "subset": subset, "metric": metric, "max_params": max_params,
         "chance": floor, "status": "insufficient", "predictions": [], "all_inside": None}
  n_sizes = len({r["params"] for r in finals})
  if n_sizes < MIN_SIZES or len(np.unique(_xy(ladder)[0])) < 3:
    out["summary"] = [f"{task} {subset}: {n_sizes} ladder sizes with {metric} and "
                      f"answer_logprob up to {fmt(max_params, 3)} parameters; the two-step "
                      f"prediction needs at least {MIN_SIZES}."]
    return files.jsonable(out)
  form, why = _step1_form(finals)
  step1 = _fit1(form, finals)
  step2 = fits.fit_sigmoid(*_xy(ladder), floor=floor, ceiling=1.0)
  s1, phi = _noise(step1, finals, step2, ladder)
  targets = by_size([r for r in done if r["params"] > max_params and is_final(r)])
  if form == "chinchilla":  # each token count of a size is its own prediction
    targets = [(size, g) for size, rs in targets
               for _, g in sorted(group_by(rs, "tokens").items(), key=lambda kv: kv[0] or 0)]
  tn = np.array([rs[0]["params"] for _, rs in targets], float)
  td = np.array([np.mean([r.get("tokens") or np.nan for r in rs]) for _, rs in targets])

  def chain(f1, f2, rng=None):
    """Task loss and metric at the targets; with rng, NOISE_DRAWS noisy measurements."""
    tl = np.asarray(_predict1(f1, tn, td), float)
    if rng is None:
      return tl, f2.predict(tl)
    tl = tl * np.exp(s1 * rng.standard_normal((NOISE_DRAWS, len(tn))))
    mu = f2.predict(tl)
    sd = np.sqrt(phi * np.clip(mu * (1 - mu), 0, None))
    return tl, np.clip(mu + sd * rng.standard_normal(mu.shape), 0, 1)

  trials = list(group_by(ladder, "trial").values())
  boot = _bootstrap(trials, form, step1, floor, chain, bootstrap, seed)
  tl_hat, y_hat = chain(step1, step2)
  out.update(status="ok", bootstrap=len(boot["p1"]),
             ladder={"sizes": [s for s, _ in by_size(finals)], "trials": len(trials),
                     "final_points": len(finals), "points": len(ladder)},
             step1={**_with_ci(step1, boot["p1"]), "form_reason": why,
                    "residual_sd_log": s1},
             step2={**_with_ci(step2, boot["p2"]), "dispersion": phi})
  iv = {k: _q(v) if len(v) else np.full((2, len(tn)), np.nan)
        for k, v in boot.items() if k in ("mean", "obs", "obs_tl")}
  for j, (size, rs) in enumerate(targets):
    lo, hi = float(iv["obs"][0, j]), float(iv["obs"][1, j])
    meas = [{"trial": r["trial"], "seed": r.get("seed"), "value": r["metrics"]["_m"][0],
             "ci": r["metrics"]["_m"][1:], "task_loss": -r["metrics"]["_lp"][0],
             "inside": bool(lo <= r["metrics"]["_m"][0] <= hi)}
            for r in sorted(rs, key=lambda r: r.get("seed") or 0)]
    out["predictions"].append({
        "size": size, "params": tn[j], "tokens": td[j], "predicted": y_hat[j],
        "interval": [lo, hi], "mean_interval": iv["mean"][:, j],
        "predicted_task_loss": tl_hat[j], "task_loss_interval": iv["obs_tl"][:, j],
        "measured_task_loss": float(np.mean([m["task_loss"] for m in meas])),
        "measured_mean": float(np.mean([m["value"] for m in meas])), "measurements": meas,
        "all_inside": all(m["inside"] for m in meas)})
  if out["predictions"]:
    out["all_inside"] = all(p["all_inside"] for p in out["predictions"])
  out["summary"] = _prediction_summary(out, step1, step2)
  return files.jsonable(out)


def _noise(step1: fits.Fit, finals, step2: fits.Fit, ladder) -> tuple[float, float]:
  """Seed-to-seed scatter of log task loss about step 1, and the quasi-binomial dispersion
  of the metric about step 2 (variance = phi * mu (1 - mu))."""
  r1 = np.log(_xy(finals)[0]) - np.log([_predict1(step1, r["params"], r.get("tokens"))
                                        for r in finals])
  s1 = float(np.sqrt(np.sum(r1 ** 2) / max(len(r1) - len(step1.params), 1)))
  x2, y2 = _xy(ladder)
  mu = step2.predict(x2)
  v = np.clip(mu * (1 - mu), 1e-6, None)
  phi = float(np.sum((y2 - mu) ** 2) / np.sum(v) * len(y2) / max(len(y2) - 2, 1))
  # The residuals' dispersion hinges on the few points off the floor; the rows' own item
  # bootstrap intervals measure the sampling noise directly, so it is never taken lower.
  ci = np.array([r["metrics"]["_m"] for r in ladder], float)
  mid = (ci[:, 0] > 0.05) & (ci[:, 0] < 0.95) & (ci[:, 2] > ci[:, 1])
  if mid.any():
    sd = (ci[mid, 2] - ci[mid, 1]) / (2 * emergence.Z95)
    phi = max(phi, float(np.median(sd ** 2 / (ci[mid, 0] * (1 - ci[mid, 0])))))
  return s1, phi


def _bootstrap(trials, form: str, step1: fits.Fit, floor: float, chain, n: int,
               seed: int) -> dict:
  """Refits of both steps on trials resampled with replacement (a trial's checkpoints are
  correlated, so they are resampled together); replicates with too few sizes are skipped."""
  rng = np.random.default_rng(seed)
  out = {"mean": [], "obs": [], "obs_tl": [], "p1": [], "p2": []}
  for _ in range(n):
    pts = [r for i in rng.integers(0, len(trials), len(trials)) for r in trials[i]]
    fin = [r for r in pts if is_final(r)]
    if len({r["params"] for r in fin}) < MIN_SIZES or len(np.unique(_xy(pts)[0])) < 3:
      continue
    try:
      b1 = _fit1(form, fin, step1)
      b2 = fits.fit_sigmoid(*_xy(pts), floor=floor, ceiling=1.0)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError):
      continue
    tl, y = chain(b1, b2, rng)
    for k, v in (("mean", chain(b1, b2)[1]), ("obs", y), ("obs_tl", tl), ("p1", b1.params),
                 ("p2", b2.params)):
      out[k].append(v)
  for k in ("obs", "obs_tl"):
    out[k] = np.concatenate(out[k]) if out[k] else []
  out["mean"] = np.array(out["mean"]) if out["mean"] else []
  return out


# A predicted interval wider than this share of the metric's range (chance to 1) constrains
# nothing: the summaries say so instead of counting measurements inside it as hits.
WIDE = 0.9


def _prediction_summary(rep: dict, step1: fits.Fit, step2: fits.Fit) -> list[str]:
  p, q = step1.params, step2.params
  law = f"{fmt(p['E'], 3)} + {fmt(p['A'], 3)} N^-{fmt(p['alpha'], 3)}"
  if step1.form != "power_law":
    law += f" + {fmt(p['B'], 3)} D^-{fmt(p['beta'], 3)}"
  lad = rep["ladder"]
  lines = [f"Two-step prediction of {rep['task']} {rep['subset']} {rep['metric']} from "
           f"{len(lad['sizes'])} sizes up to {fmt(rep['max_params'], 3)} parameters "
           f"({lad['trials']} trials, {lad['points']} checkpoints): task loss = {law}; "
           f"{rep['metric']} = sigmoid of task loss centred at {fmt(q['x0'], 3)} with slope "
           f"{fmt(q['k'], 3)}, floor {fmt(q['floor'], 3)}; {rep['bootstrap']} bootstrap refits."]
  span = 1.0 - (rep["chance"] or 0.0)
  for t in rep["predictions"]:
    seeds = ", ".join(f"{fmt(m['value'], 3)}" for m in t["measurements"])
    inside = sum(m["inside"] for m in t["measurements"])
    wide = t["interval"][1] - t["interval"][0] > WIDE * span
    lines.append(
        f"At {fmt(t['params'], 3)} parameters"
        + (f", {fmt(t['tokens'], 3)} tokens" if step1.form == "chinchilla" else "")
        + f" ({t['size']}): predicted {fmt(t['predicted'], 3)} "
        f"{_ival(*t['interval'])}, measured {fmt(t['measured_mean'], 3)} (seeds: {seeds}); "
        f"{inside} of {len(t['measurements'])} measurements inside the interval"
        + (f" (it spans more than {WIDE:.0%} of the metric's range: it constrains nothing, "
           "and a measurement inside it tests nothing)" if wide else "")
        + ". Task loss "
        f"predicted {fmt(t['predicted_task_loss'], 3)} {_ival(*t['task_loss_interval'])}, "
        f"measured {fmt(t['measured_task_loss'], 3)}.")
  if not rep["predictions"]:
    lines.append("No completed size above the ladder to check the prediction against.")
  return lines


# --- loss at which a capability appears ------------------------------------------------------


def _losses(r) -> np.ndarray:
  """[held-out loss, task loss] of a row, nan where missing."""
  return np.array([r.get("final_eval_loss") or np.nan,
                   -r["metrics"]["_lp"][0] if "_lp" in r["metrics"] else np.nan])


def _trial_threshold(rows, chance: float) -> dict:
  """First checkpoint whose CI low bound is above chance, in training order, and the bracket
  back to the last earlier checkpoint whose mean was not above chance (ambiguous checkpoints,
  above chance but not significantly, lie inside the bracket)."""
  rows = sorted(rows, key=training_order)
  first = next((i for i, r in enumerate(rows) if r["metrics"]["_m"][1] > chance), None)
  if first is None:  # the threshold lies below the lowest loss reached
    low = np.nanmin([_losses(r) for r in rows], axis=0)
    return {"crossed": False, "threshold": [None, None], "lo": [-np.inf] * 2, "hi": low}
  at = _losses(rows[first])
  before = [i for i in range(first) if rows[i]["metrics"]["_m"][0] <= chance]
  prev = _losses(rows[before[-1]]) if before else np.full(2, np.inf)
  return {"crossed": True, "threshold": at, "lo": np.fmin(at, prev), "hi": np.fmax(at, prev)}


def _verdict(sizes: list[dict], k: int, what: str) -> tuple[str, str]:
  """'same' when one loss lies in every size's interval (index k: 0 held-out, 1 task loss)."""
  known = [s for s in sizes if not np.isnan(s["interval"][k]).any()
           and np.isfinite(s["interval"][k]).any()]
  if len(known) < 2 or not any(s["crossed"] for s in known):
    return "insufficient", f"fewer than two sizes bound the {what} threshold"
  top = max(known, key=lambda s: s["interval"][k][0])
  bottom = min(known, key=lambda s: s["interval"][k][1])
  lo, hi = top["interval"][k][0], bottom["interval"][k][1]
  if lo <= hi:
    return "same", (f"one {what}, {_fmt(lo)} to {_fmt(hi)}, lies in every size's interval, "
                    "as Du et al. (2024) found")
  return "different", (f"{top['size']}'s interval {_ival(*top['interval'][k])} lies entirely "
                       f"above {bottom['size']}'s {_ival(*bottom['interval'][k])}")


def loss_threshold(rows, task: str, subset: str, *, metric: str = "exact_match") -> dict:
  """Per size, the held-out loss (and task loss) at which `metric` first exceeds chance
  significantly over the checkpoints, with intervals, and whether it is the same across sizes.

  A seed's threshold is its first checkpoint whose CI low bound is above chance (the row's
  chance level, else 0); its interval reaches back to the last earlier checkpoint whose mean
  was at or below chance. A size's interval is the hull of its seeds' intervals; a size that
  never exceeds chance bounds its threshold below the lowest loss it reached."""
  name, lp = f"{task}/{subset}/{metric}", f"{task}/{subset}/answer_logprob"
  done = [{**r, "metrics": {"_m": r["metrics"][name],
                            **({"_lp": r["metrics"][lp]} if lp in r["metrics"] else {})}}
          for r in completed(rows) if name in r["metrics"]]
  chance = chance_of(rows, name)
  sizes = []
  for size, rs in by_size(done):
    seeds = [_trial_threshold(t, chance) for t in group_by(rs, "trial").values()]
    crossed = [s for s in seeds if s["crossed"]]
    thr = np.array([s["threshold"] for s in crossed] or [[np.nan] * 2], float)
    lo = np.min([s["lo"] for s in seeds], axis=0)
    hi = np.max([s["hi"] for s in seeds], axis=0)
    sizes.append({"size": size, "params": rs[0]["params"], "crossed": bool(crossed),
                  "seeds_crossed": len(crossed), "seeds": len(seeds),
                  "threshold": np.median(thr, axis=0), "interval": np.stack([lo, hi], 1),
                  "seed_spread": np.stack([thr.min(0), thr.max(0)], 1),
                  "lowest_loss": np.nanmin([_losses(r) for r in rs], axis=0)})
  verdict, reason = _verdict(sizes, 0, "held-out loss")
  task_verdict, task_reason = _verdict(sizes, 1, "task loss")
  out = {"task": task, "subset": subset, "metric": metric, "chance": chance,
         "verdict": verdict, "reason": reason, "task_loss_verdict": task_verdict,
         "task_loss_reason": task_reason}
  lines = [f"Held-out loss at which {task} {subset} {metric} first exceeds chance "
           f"({fmt(chance)}) significantly:"]
  for s in sizes:
    if s["crossed"]:
      lines.append(f"{s['size']} ({fmt(s['params'], 3)} parameters): {fmt(s['threshold'][0], 3)} "
                   f"{_ival(*s['interval'][0])}, task loss {_fmt(s['threshold'][1])}; "
                   f"{s['seeds_crossed']} of {s['seeds']} seeds.")
    else:
      lines.append(f"{s['size']} ({fmt(s['params'], 3)} parameters): never above chance, down to "
                   f"held-out loss {_fmt(s['lowest_loss'][0])}.")
  lines.append(f"Same threshold across sizes: {verdict}; {reason}. On task loss: "
               f"{task_verdict}; {task_reason}.")
  # Per size: threshold and lowest_loss as [held-out, task], interval and seed_spread as
  # [[lo, hi] held-out, [lo, hi] task]; None for an unbounded end or a missing loss.
  out.update(sizes=sizes, summary=lines)
  return files.jsonable(out)


# --- order of emergence ----------------------------------------------------------------------


def _transition(finals, name: str, chance: float, bootstrap: int, seed: int) -> dict:
  """The size-based sigmoid transition of `emergence_report` when it finds one in range, else
  the smallest size all of whose seeds have a CI low bound above chance."""
  x = np.log10([r["params"] for r in finals])
  vals = np.array([r["metrics"][name] for r in finals], float)
  metric = name.rsplit("/", 1)[1]
  rep = emergence.emergence_report(x, {metric: (vals[:, 0], vals[:, 1], vals[:, 2])},
                                   {metric: chance}, bootstrap=bootstrap, seed=seed,
                                   power_law=False)["metrics"][metric]
  if rep["transition_params"] is not None and rep["transition_in_range"] and \
     rep["transition_ci"] and None not in rep["transition_ci"]:
    return {"params": rep["transition_params"], "interval": rep["transition_ci"],
            "source": "sigmoid"}
  below = 0.0
  for _, rs in by_size(finals):
    if all(r["metrics"][name][1] > chance for r in rs):
      return {"params": rs[0]["params"], "interval": [below, rs[0]["params"]],
              "source": "first size above chance"}
    below = rs[0]["params"]
  return {"params": None, "interval": [below, np.inf], "source": "not above chance"}


def emergence_order(rows, tasks: Iterable[Sequence[str] | str], *,
                    metric: str = "exact_match", bootstrap: int = 100, seed: int = 0) -> dict:
  """Tasks sorted by the size at which `metric` emerges, with that size's interval and the
  held-out loss threshold (median over sizes, hull of their intervals), and for each pair
  whether the later one's interval lies wholly above the earlier one's."""
  finals = [r for r in completed(rows) if is_final(r)]
  entries = []
  for i, ts in enumerate(tasks):
    task, subset = ts.split("/", 1) if isinstance(ts, str) else ts
    name = f"{task}/{subset}/{metric}"
    fin = [r for r in finals if name in r["metrics"]]
    if not fin:
      continue
    tr = _transition(fin, name, chance_of(rows, name), bootstrap, seed + i)
    lt = loss_threshold(rows, task, subset, metric=metric)
    crossed = [s for s in lt["sizes"] if s["crossed"]]
    ends = np.array([[np.nan if v is None else v for v in s["interval"][0]] for s in crossed]
                    or [[np.nan] * 2])
    entries.append({"task": task, "subset": subset, "transition_params": tr["params"],
                    "transition_interval": tr["interval"], "transition_source": tr["source"],
                    "loss_threshold": np.median([s["threshold"][0] for s in crossed] or np.nan),
                    "loss_interval": [ends[:, 0].min(), ends[:, 1].max()],  # nan: open
                    "loss_verdict": lt["verdict"]})
  entries.sort(key=lambda e: (np.inf if e["transition_params"] is None
                              else e["transition_params"], e["transition_interval"][0]))
  pairs, lines = [], []
  for a, b in ((a, b) for i, a in enumerate(entries) for b in entries[i + 1:]):
    hi_a, lo_b = a["transition_interval"][1], b["transition_interval"][0]
    separated = bool(hi_a is not None and lo_b is not None and hi_a < lo_b)
    la, lb = (f"{e['task']}/{e['subset']}" for e in (a, b))
    pairs.append({"earlier": la, "later": lb, "separated": separated})
    lines.append(
        f"{lb} emerges at {'a' if separated else 'no clearly'} larger scale than {la}: "
        + " vs ".join(f"{_fmt(e['transition_params'])} {_ival(*e['transition_interval'])}"
                      for e in (b, a))
        + f" parameters (the intervals {'do not ' if separated else ''}overlap); held-out "
        "loss thresholds " + " vs ".join(f"{_fmt(e['loss_threshold'])} "
                                         f"{_ival(*e['loss_interval'])}" for e in (b, a)) + ".")
  order = ", ".join(f"{e['task']}/{e['subset']}" for e in entries)
  summary = [f"Order of emergence ({metric}), earliest first: {order}."] + lines
  return files.jsonable({"metric": metric, "tasks": entries, "pairs": pairs,
                              "summary": summary})
