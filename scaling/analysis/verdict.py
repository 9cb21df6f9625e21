"""The answer of a sweep's analysis in one paragraph: what the headline capability does with
size, what the prediction from the small sizes got right, and how the loss scales.

Every sentence is read off `analysis.json`; where the data do not support a claim (an
interval that spans nearly the whole range, a transition no measured size lies in, a fit at
its bound), the paragraph says so instead of quoting the number as a result.
"""

from __future__ import annotations

import numpy as np

from scaling.analysis import emergence, prediction
from scaling.numbers import fmt, interval, signed

FITTED = {"loss_vs_params": "Held-out loss against parameters",
          "fd_vs_params": "FD of samples against parameters"}


def emergence_sentences(report: dict, metric_name: str = "exact_match") -> list[str]:
  """What one metric does across the sizes, in words."""
  metric = report["metrics"].get(metric_name) or next(iter(report["metrics"].values()))
  name = metric_name.replace("_", " ")
  log_sizes, means = emergence.per_size(np.asarray(report["log_params"], float),
                                        np.asarray(metric["values"], float))
  sizes = 10.0 ** log_sizes
  out = [f"{report['task']}: {name} (mean over seeds) goes from {fmt(means[0], 3)} at "
         f"{fmt(sizes[0], 3)} parameters to {fmt(means[-1], 3)} at {fmt(sizes[-1], 3)} "
         f"over {len(sizes)} sizes."]
  verdict = metric["verdict"]
  if verdict == "sigmoid":
    lo, hi = metric["transition_ci"] or (None, None)
    text = (f"A sigmoid in log-size fits it better than any smooth curve: the transition "
            f"is at {interval(metric['transition_params'], lo, hi, 3)} parameters")
    gap = emergence.measured_gap(report["log_params"], metric["transition_ci"])
    if gap:
      text += (f" (no measured size lies inside this interval, the nearest being "
               f"{fmt(gap[0], 3)} and {fmt(gap[1], 3)}: it comes from the sigmoid's shape, "
               "not from a measurement)")
    out.append(text + ".")
  elif verdict == "smooth":
    criterion = metric["reason"].split(";")[0].split(" (needs")[0]
    out.append(f"It grows smoothly with size (best fit {metric['best_smooth']}); a sigmoid "
               f"does not fit it better ({criterion}, and a sigmoid must be "
               f"{fmt(emergence.AIC_MARGIN)} lower).")
  else:
    out.append(f"Too few sizes to tell a transition from a smooth trend ({metric['reason']}).")
  step = metric.get("step")
  if step and verdict != "sigmoid":
    out.append(f"Its largest step, {signed(step['change'], 3)}, lies between "
               f"{fmt(step['from_params'], 3)} and {fmt(step['to_params'], 3)} parameters.")
  return out


def prediction_sentences(rep: dict) -> list[str]:
  """Whether the prediction from the small sizes held, and whether it said anything."""
  if rep.get("status") != "ok":
    return rep.get("summary", [])[:1]
  preds = rep["predictions"]
  meas = [m for p in preds for m in p["measurements"]]
  inside = sum(m["inside"] for m in meas)
  text = (f"Predicted from the sizes up to {fmt(rep['max_params'], 3)} parameters, {inside} of "
          f"{len(meas)} measurements at {len(preds)} larger sizes fall inside their 95% "
          "intervals")
  widths = [p["interval"][1] - p["interval"][0] for p in preds]
  if widths and min(widths) > prediction.WIDE * (1.0 - (rep["chance"] or 0.0)):
    text += (f", but every interval spans more than {prediction.WIDE:.0%} of the metric's "
             f"range (narrowest {fmt(min(widths), 3)}), so the prediction does not constrain the "
             "larger sizes")
  return [text + "."]


def fit_sentence(name: str, fit: dict) -> str:
  """The exponent of a power law with its interval, flagging parameters at a bound."""
  p, ci = fit["params"], fit.get("ci", {})
  what = FITTED.get(name) or name.replace("_vs_", " against ").replace("_", " ").capitalize()
  alpha = (interval(p["alpha"], *ci["alpha"]) if "alpha" in ci else fmt(p["alpha"], 3))
  text = f"{what}: a power law with exponent {alpha}"
  if "E" in fit.get("fixed", ()):
    text += " and no asymptote (the data do not support one, by AICc)"
  stuck = [k for k in p if k in ci and ci[k][0] == ci[k][1]]
  if stuck:
    text += (f" ({', '.join(stuck)} sits at a bound of its fit with a zero-width interval; "
             "not a result)")
  return text + "."


def paragraph(analysis: dict) -> str:
  """One paragraph: the headline capability, its prediction, then the loss law."""
  task, subset = analysis.get("headline") or (None, None)
  key = f"{task}/{subset}"
  out = []
  report = analysis.get("emergence", {}).get(key)
  if report and report.get("metrics"):
    out += emergence_sentences(report)
  prediction = (analysis.get("prediction") or {}).get(key)
  if prediction:
    out += prediction_sentences(prediction)
  for name in ("loss_vs_params", "fd_vs_params"):
    fit = analysis.get("fits", {}).get(name)
    if fit and "alpha" in fit.get("params", {}):
      out.append(fit_sentence(name, fit))
  return " ".join(out) or "No completed trial has the metrics this analysis reads."
