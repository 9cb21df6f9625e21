"""`scaling plot SWEEP_DIR`: fits, emergence reports, predictions and figures.

Reads only `results.jsonl` and `sweep.json` (headline task, prediction cut); writes
`analysis.json`, `figures/` and the self-contained `report.html` in the sweep directory,
and prints the table, the fits and where it all is. Each part runs when the table holds
what it needs:

  always              loss against size and compute (power law), capability against size
                      with an emergence test per task
  image metrics       quality and diversity against size (and, for diffusion, against
                      sampling steps and guidance); collapsed runs per size
  learning-rate grid  the best rate per size (fits then use it), loss-vs-rate figure
  flop budgets        IsoFLOP profiles and compute-optimal exponents (`compute_optimal`)
  checkpoint rows     capability over training and against loss, loss thresholds, the
                      order of emergence, and with `predict_from` a two-step prediction
"""

from __future__ import annotations

import os
import sys

import numpy as np

from scaling import files
from scaling.analysis import (calibration, checkpoints, collapse, compute_optimal, emergence,
                              fits, html_report, image_plots, kinds, learning_rates, plots,
                              prediction, prediction_plots, tables)
from scaling.errors import UserError
from scaling.numbers import fmt, interval
from scaling.sweep import results
from scaling.sweep import spec as spec_lib
from scaling.sweep.layout import SweepDir

LOSS_AXES = {"params": "parameters", "training_flops": "training compute (FLOPs)"}


def _tasks(rows) -> list[tuple[str, str]]:
  """Every (task, subset) with an exact-match score, headline subsets first."""
  names = {tuple(k.split("/")[:2]) for r in rows for k in r["metrics"]
           if k.split("/")[-1] in tables.SMOOTH_VIEW}
  return sorted(names, key=lambda ts: (ts[1] != "all", ts))


def _safe(task: str, subset: str) -> str:
  return f"{task}_{subset}".replace("/", "_").replace("+", "add").replace("=", "")


def loss_fit(rows, x_key: str):
  done = [r for r in rows if r["status"] == "completed" and r.get("final_eval_loss")]
  x = np.asarray([r[x_key] for r in done], float)
  if len(np.unique(x)) < 4:  # three parameters need more than three sizes
    return None
  fit = fits.select_power_law(x, np.asarray([r["final_eval_loss"] for r in done], float),
                              bootstrap=100)
  p = fit.params
  offset = "" if "E" in fit.fixed else f"{fmt(p['E'], 3)} + "
  fit.label = f"L = {offset}{fmt(p['A'], 3)} x^-{fmt(p['alpha'], 3)}"
  return fit


def emergence_for(rows, task: str, subset: str, fitted: dict | None = None) -> dict:
  """The emergence report of one task and subset. `fitted` maps the inputs of reports
  made already to them: subsets that hold the same items (`arithmetic/all` and
  `arithmetic/+3d` when only 3-digit addition is trained) are fitted once."""
  done = [r for r in rows if r["status"] == "completed"]
  sharp = tables.sharp_metric(done, task, subset)
  smooth = tables.SMOOTH_VIEW[sharp]
  values, chance = {}, {}
  for metric in dict.fromkeys((sharp, smooth, "predicted_exact_match", "digit_accuracy")):
    name = f"{task}/{subset}/{metric}"
    points = [(np.log10(r["params"]), *r["metrics"][name]) for r in done if name in r["metrics"]]
    if points:
      x, mean, low, high = map(np.asarray, zip(*points))
      values[metric] = (mean, low, high)
      if name in done[0].get("chance", {}):
        chance[metric] = done[0]["chance"][name]
  if not values:
    return {}
  key = files.digest(files.jsonable([x, values, chance]), length=32)
  if fitted is not None and key in fitted:
    return {**fitted[key], "task": f"{task} {subset}", "same_as": fitted[key]["task"]}
  # A suite without the usual continuous twin (spoken counting has a log-probability,
  # which its own study compares) is tested on its sharp metric alone.
  report = emergence.emergence_report(
      x, values, chance, exact_metric=sharp if smooth in values else None,
      continuous_metric=smooth if smooth in values else None, task=f"{task} {subset}",
      bootstrap=100)
  if fitted is not None:
    fitted[key] = report
  return report


class _Figures:
  """Saves figures (PNG and SVG) into the sweep's figures/ and remembers their captions;
  `lead` figures open the report, the others go with the method details."""

  def __init__(self, directory: str):
    self.directory, self._lead, self.rest = directory, [], []

  def save(self, fig, name: str, caption: str, lead: int | None = None) -> None:
    """`lead` ranks a headline figure (0 first: the capability, then its prediction,
    then the loss law); None puts it with the details."""
    paths = plots.save(fig, self.directory, name)
    if lead is None:
      self.rest.append((paths[0], caption))
    else:
      self._lead.append((lead, len(self._lead), (paths[0], caption)))

  @property
  def lead(self) -> list[tuple[str, str]]:
    return [figure for *_, figure in sorted(self._lead)]

  @property
  def written(self) -> list[tuple[str, str]]:
    return self.lead + self.rest


def _image_part(rows, headline: str, figs: _Figures, analysis: dict) -> None:
  """Quality and diversity vs size at the headline setting; for diffusion models also
  quality vs sampling steps and guidance; the share of collapsed runs per size."""
  lead = {"fd": "Fréchet distance of samples to held-out images against parameters "
                "(lower is better): look for whether it keeps falling with size",
          "class_accuracy": "Share of samples the digit classifier labels as the requested "
                            "class against parameters: conditioning works where it is high"}
  for metric in ("fd", "class_accuracy", "kid", "precision", "recall", "class_coverage"):
    figs.save(image_plots.quality_vs_params(rows, headline, metric), f"{metric}_vs_params",
              lead.get(metric, f"{metric} against parameters") + f" ({headline}).",
              lead=list(lead).index(metric) if metric in lead else None)
  analysis["collapse"] = collapse.shares(rows, headline)
  found = image_plots.settings(rows)
  if headline in found:
    method, steps, guidance = found[headline]
    figs.save(image_plots.quality_vs_steps(rows, guidance), "fd_vs_steps",
              "FD against sampling steps")
    figs.save(image_plots.quality_vs_steps(rows, guidance, "class_accuracy"),
              "class_accuracy_vs_steps", "class accuracy against sampling steps")
    figs.save(image_plots.quality_vs_guidance(rows, method, steps), "quality_vs_guidance",
              "quality against guidance")
  # Sample quality as a power law in size, like the loss: FD = E + A N^-alpha.
  done = [r for r in rows if r["status"] == "completed"
          and f"image_quality/{headline}/fd" in r["metrics"]]
  x = np.asarray([r["params"] for r in done], float)
  if len(np.unique(x)) >= 4:
    fd = np.asarray([r["metrics"][f"image_quality/{headline}/fd"][0] for r in done], float)
    analysis["fits"]["fd_vs_params"] = fits.select_power_law(x, fd, bootstrap=100).to_dict()


def _compute_optimal_part(rows, figs: _Figures, analysis: dict) -> list[str]:
  """IsoFLOP parabolas (Approach 2) and the Chinchilla form (Approach 3) over all runs."""
  done = [r for r in checkpoints.completed(rows) if r.get("flop_budget")
          and isinstance(r.get("final_eval_loss"), (int, float))]
  if len({r["flop_budget"] for r in done}) < 2:
    return []
  N, D, C, L, budget = (np.asarray([r[k] for r in done], float) for k in
                        ("params", "tokens", "training_flops", "final_eval_loss",
                         "flop_budget"))
  try:
    iso = compute_optimal.fit_isoflop(N, C, L, budget, D=D, flops_per_token=None,
                                      bootstrap=200)
  except ValueError as e:
    return [f"compute-optimal fit not possible: {e}"]
  parametric = compute_optimal.fit_parametric(N, D, L, C=C, flops_per_token=None,
                                              bootstrap=100)
  block = compute_optimal.compute_optimal_block(iso, parametric)
  analysis["compute_optimal"] = block
  figs.save(compute_optimal.isoflop_figure(iso, parametric), "isoflop",
            "IsoFLOP profiles (loss against parameters per budget, minima starred) and "
            "N*(C) by both approaches")
  out = []
  for approach in ("approach2", "approach3"):
    v = block.get(approach)
    if v and v["ci"].get("a"):
      lo, hi = v["ci"]["a"]
      out.append(f"compute-optimal N*(C) ~ C^a, {approach}: a = {interval(v['a'], lo, hi)}, "
                 f"b = {fmt(v['b'], 3)}")
  return out


def _checkpoint_part(rows, task: str, subset: str, predict_from: float, figs: _Figures,
                     analysis: dict) -> list[str]:
  """Capability over training and against loss; loss thresholds; emergence order; the
  two-step prediction of the larger sizes from the smaller ones."""
  if all(checkpoints.is_final(r) for r in rows):
    return []
  texts = []
  safe = _safe(task, subset)
  figs.save(prediction_plots.capability_vs_tokens(rows, task, subset),
            f"capability_vs_tokens_{safe}", f"{task} {subset} over training, per size")
  figs.save(prediction_plots.capability_vs_loss(rows, task, subset),
            f"capability_vs_loss_{safe}",
            f"{task} {subset} against held-out loss, every size and checkpoint")
  analysis["loss_threshold"] = {f"{task}/{subset}": prediction.loss_threshold(rows, task, subset)}
  tasks = [(t, s) for t, s in _tasks(rows) if s == "all" or (t, s) == (task, subset)]
  analysis["emergence_order"] = prediction.emergence_order(rows, tasks)
  if predict_from:
    report = prediction.two_step_prediction(rows, task, subset, max_params=predict_from)
    analysis["prediction"] = {f"{task}/{subset}": report}
    texts += report.get("summary", [])
    if report.get("status") == "ok":
      figs.save(prediction_plots.prediction_vs_measurement(rows, report),
                f"prediction_{safe}", f"Two-step prediction of {task} {subset} from the "
                f"sizes up to {fmt(predict_from)} parameters against the larger sizes' "
                "measurements: a measurement outside its predicted interval is a miss.",
                lead=1)
  return texts


def analyze(directory: str) -> int:
  """Writes analysis.json, the figures and report.html; prints a summary. Exit code 0."""
  layout = SweepDir(directory)
  if not os.path.exists(layout.results):
    raise UserError(f"{directory} has no results.jsonl (run `scaling sweep collect` first)")
  all_rows = results.read(layout.results)
  if not any(r.get("status") == "completed" for r in all_rows):
    states = sorted({r.get("status", "pending") for r in all_rows})
    raise UserError(f"{directory}: no trial completed ({', '.join(states) or 'no trials'}); "
                    "nothing to fit or plot")
  # sweep.json holds every field of the sweep; the schema fills any an older one lacks.
  sweep = {**spec_lib.base_sweep().to_dict(), **files.read_json(layout.sweep, default={})}
  task, subset = tuple(sweep["headline"])
  final = [r for r in all_rows if checkpoints.is_final(r)]
  analysis = {"headline": [task, subset], "fits": {}, "emergence": {}}
  figs, texts = _Figures(layout.figures), []
  kind = kinds.reading(final, directory)
  images = kind.images
  if images and subset not in image_plots.subsets(final):
    subset = image_plots.subsets(final)[0]
    analysis["headline"] = ["image_quality", subset]
  # Image models pick their rate by sample quality: a GAN's held-out loss (its
  # discriminator's) says nothing about its samples.
  lr_metric = f"image_quality/{subset}/fd" if images else None
  if learning_rates.has_grid(final):
    analysis["learning_rates"] = learning_rates.report(final, lr_metric)
    texts.append(analysis["learning_rates"]["text"])
    figs.save(learning_rates.figure(final, lr_metric), "loss_vs_learning_rate",
              f"{lr_metric or 'held-out loss'} against learning rate, one line per width")
    final = learning_rates.at_best(final, lr_metric)  # size laws use each size's best rate
  sized = [r for r in final if not r.get("flop_budget")] or final
  ylabel = kind.loss_label
  for x_key, plot in (("params", plots.loss_vs_params), ("training_flops", plots.loss_vs_flops)):
    if not any(r.get("final_eval_loss") is not None and r.get(x_key) for r in sized):
      continue  # no loss to plot against it (an imported ladder has neither loss nor FLOPs)
    fit = loss_fit(sized, x_key)
    if fit is not None:
      analysis["fits"][f"loss_vs_{x_key}"] = fit.to_dict()
    figs.save(plot(sized, fit, ylabel=ylabel), f"loss_vs_{x_key}",
              f"Held-out loss against {LOSS_AXES[x_key]} with the fitted power law: "
              "sizes off the line are ones the law does not describe.",
              lead=2 if x_key == "params" and not images else None)
  if images:
    _image_part(final, subset, figs, analysis)
  fitted = {}
  # The headline first: a subset with the same items and scores (arithmetic/all when only
  # 3-digit addition is trained) refers to it instead of repeating its analysis and figure.
  for t, s in sorted(_tasks(final), key=lambda ts: ts != (task, subset)):
    if s != "all" and (t, s) != (task, subset):
      continue
    report = analysis["emergence"][f"{t}/{s}"] = emergence_for(sized, t, s, fitted)
    if report.get("same_as"):
      continue
    headline = (t, s) == (task, subset)
    figs.save(plots.capability_vs_params(sized, t, s), f"capability_{_safe(t, s)}",
              f"{t} {s}: exact match against size, each seed with its 95% interval and "
              "the mean as a line, beside continuous metrics"
              + (": where the line leaves the floor, the capability appears." if headline
                 else "."), lead=0 if headline else None)
  texts += _compute_optimal_part(final, figs, analysis)
  block = calibration.report(sized, task, subset)
  if block:
    analysis["calibration"] = block
    texts.append(calibration.summary(block))
    figs.save(calibration.figure(block), f"calibration_{_safe(task, subset)}",
              f"{task} {subset}: expected calibration error of the greedy answer's "
              "probability against size (each seed with its 95% interval), and mean "
              "confidence beside exact match")
  # The prediction's sentences are printed here; the report has them in its own section.
  prediction_texts = _checkpoint_part(all_rows, task, subset,
                                      float(sweep.get("predict_from") or 0), figs, analysis)
  files.write_json(layout.analysis, files.jsonable(analysis))
  html_report.write_report(layout.path, title=f"{sweep.get('name', 'sweep')}: results",
                           table_rows=final, analysis=analysis, lead=figs.lead,
                           figures=figs.rest, texts=texts)
  texts += prediction_texts

  print(tables.image_table(final, subset) if images
        else tables.capability_table(final, task, subset))
  for name, fit in analysis["fits"].items():
    p, ci = fit["params"], fit["ci"]
    print(f"\n{name}: " + ", ".join(
        f"{k} = {fmt(v)}" + (f" [{fmt(ci[k][0], 3)}, {fmt(ci[k][1], 3)}]" if k in ci else "")
        for k, v in p.items()))
    if fit.get("selection", {}).get("chosen") == "without_E":
      s = fit["selection"]
      print(f"  E = 0: the data do not support an asymptote (AICc {fmt(s['aicc_without_E'], 3)} "
            f"without it, {fmt(s['aicc_with_E'], 3)} with it; it must be {fmt(fits.AIC_MARGIN)} "
            "lower to be kept)")
    # A bootstrap that never moves a parameter says the fit sits at a bound, not that
    # the parameter is known exactly.
    stuck = [k for k in p if k in ci and ci[k][0] == ci[k][1]]
    if stuck:
      print(f"  degenerate: {', '.join(stuck)} has a zero-width interval (the fit sits at a "
            "bound); not a result")
  report = analysis["emergence"].get(f"{task}/{subset}")
  if report:
    print("\n" + emergence.format_report(report))
  for text in texts:
    print(text)
  print(f"\nresults table: {layout.results_csv}")
  print(f"figures:       {layout.figures}/ ({len(figs.written)} figures, PNG and SVG)")
  print(f"analysis:      {layout.analysis}")
  print(f"report:        {layout.report}")
  sys.stdout.flush()
  return 0
