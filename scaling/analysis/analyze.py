"""`scaling plot SWEEP_DIR`: fits, emergence reports and figures from the results table.

Reads only `results.jsonl` and `sweep.json` (for the headline task); writes `analysis.json`
and `figures/` in the sweep directory, and prints the table, the fits and where it all is.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from scaling import files
from scaling.analysis import emergence, fits, image_plots, plots
from scaling.errors import UserError
from scaling.sweep import results
from scaling.sweep.layout import SweepDir

CONTINUOUS = "char_accuracy"  # the smooth view set beside exact match in the report


def _headline(layout: SweepDir) -> tuple[str, str]:
  return tuple(files.read_json(layout.sweep, default={}).get("headline")
               or ("arithmetic", "+3d"))


def _tasks(rows) -> list[tuple[str, str]]:
  """Every (task, subset) with an exact-match score, headline subsets first."""
  names = {tuple(k.split("/")[:2]) for r in rows for k in r["metrics"]
           if k.endswith("/exact_match")}
  return sorted(names, key=lambda ts: (ts[1] != "all", ts))


def loss_fit(rows, x_key: str):
  done = [r for r in rows if r["status"] == "completed" and r.get("final_eval_loss")]
  x = np.asarray([r[x_key] for r in done], float)
  if len(np.unique(x)) < 4:  # three parameters need more than three sizes
    return None
  fit = fits.fit_power_law(x, np.asarray([r["final_eval_loss"] for r in done], float),
                           bootstrap=100)
  p = fit.params
  fit.label = f"L = {p['E']:.3f} + {p['A']:.3g} x^-{p['alpha']:.3f}"
  return fit


def emergence_for(rows, task: str, subset: str) -> dict:
  done = [r for r in rows if r["status"] == "completed"]
  values, chance = {}, {}
  for metric in ("exact_match", CONTINUOUS, "predicted_exact_match", "digit_accuracy"):
    name = f"{task}/{subset}/{metric}"
    points = [(np.log10(r["params"]), *r["metrics"][name]) for r in done if name in r["metrics"]]
    if points:
      x, mean, low, high = map(np.asarray, zip(*points))
      values[metric] = (mean, low, high)
      if name in done[0].get("chance", {}):
        chance[metric] = done[0]["chance"][name]
  if not values:
    return {}
  return emergence.emergence_report(x, values, chance, exact_metric="exact_match",
                                    continuous_metric=CONTINUOUS, task=f"{task} {subset}",
                                    bootstrap=100)


def _summary_table(rows, task: str, subset: str) -> str:
  lines = [f"{'size':<6} {'seed':>4} {'params':>9} {'status':<10} {'eval loss':>9} "
           f"{'exact match (95% CI)':>24} {'char acc':>9} {'pred. EM':>9}"]
  for r in sorted(rows, key=lambda r: (r["params"], r["seed"])):
    m = r["metrics"]
    em = m.get(f"{task}/{subset}/exact_match")
    ca = m.get(f"{task}/{subset}/{CONTINUOUS}")
    pe = m.get(f"{task}/{subset}/predicted_exact_match")
    loss = r.get("final_eval_loss")
    lines.append(
        f"{r['size']:<6} {r['seed']:>4} {r['params']:>9,} {r['status']:<10} "
        f"{'-' if loss is None else f'{loss:.4f}':>9} "
        f"{f'{em[0]:.3f} [{em[1]:.3f}, {em[2]:.3f}]' if em else '-':>24} "
        f"{f'{ca[0]:.3f}' if ca else '-':>9} {f'{pe[0]:.3f}' if pe else '-':>9}")
  return "\n".join(lines)


def _image_figures(rows, headline: str, figures: str, analysis: dict) -> list[str]:
  """Quality vs size for the headline sampler setting, and vs steps and guidance."""
  found = image_plots.settings(rows)
  if headline not in found:
    headline = next(iter(found))
    analysis["headline"] = ["image_quality", headline]
  method, steps, guidance = found[headline]
  written = []
  for metric in ("fd", "class_accuracy", "kid"):
    written += plots.save(image_plots.quality_vs_params(rows, headline, metric), figures,
                          f"{metric}_vs_params")
  written += plots.save(image_plots.quality_vs_steps(rows, guidance), figures, "fd_vs_steps")
  written += plots.save(image_plots.quality_vs_steps(rows, guidance, "class_accuracy"),
                        figures, "class_accuracy_vs_steps")
  written += plots.save(image_plots.quality_vs_guidance(rows, method, steps), figures,
                        "quality_vs_guidance")
  # Sample quality as a power law in size, like the loss: FD = E + A N^-alpha.
  done = [r for r in rows if r["status"] == "completed"
          and f"image_quality/{headline}/fd" in r["metrics"]]
  x = np.asarray([r["params"] for r in done], float)
  if len(np.unique(x)) >= 4:
    fd = np.asarray([r["metrics"][f"image_quality/{headline}/fd"][0] for r in done], float)
    analysis["fits"]["fd_vs_params"] = fits.fit_power_law(x, fd, bootstrap=100).to_dict()
  return written


def _image_table(rows, subset: str) -> str:
  lines = [f"{'size':<6} {'seed':>4} {'params':>9} {'status':<10} {'eval mse':>9} "
           f"{'FD':>8} {'KID':>8} {'class acc (95% CI)':>22}   ({subset})"]
  for r in sorted(rows, key=lambda r: (r["params"], r["seed"])):
    m = r["metrics"]
    fd, kid, acc = (m.get(f"image_quality/{subset}/{k}") for k in ("fd", "kid", "class_accuracy"))
    loss = r.get("final_eval_loss")
    lines.append(
        f"{r['size']:<6} {r['seed']:>4} {r['params']:>9,} {r['status']:<10} "
        f"{'-' if loss is None else f'{loss:.4f}':>9} "
        f"{f'{fd[0]:.2f}' if fd else '-':>8} {f'{kid[0]:.2f}' if kid else '-':>8} "
        f"{f'{acc[0]:.3f} [{acc[1]:.3f}, {acc[2]:.3f}]' if acc else '-':>22}")
  return "\n".join(lines)


def analyze(directory: str) -> int:
  """Writes analysis.json and the figures; prints a summary. Returns the exit code."""
  layout = SweepDir(directory)
  if not os.path.exists(layout.results):
    raise UserError(f"{directory} has no results.jsonl (run `scaling sweep collect` first)")
  rows = results.read(layout.results)
  if not any(r.get("status") == "completed" for r in rows):
    states = sorted({r.get("status", "pending") for r in rows})
    raise UserError(f"{directory}: no trial completed ({', '.join(states) or 'no trials'}); "
                    "nothing to fit or plot")
  task, subset = _headline(layout)
  figures = layout.figures
  written = []
  analysis = {"headline": [task, subset], "fits": {}, "emergence": {}}
  images = bool(image_plots.settings(rows))
  ylabel = "held-out denoising error (MSE)" if images else "held-out loss (nats/token)"
  for x_key, plot in (("params", plots.loss_vs_params), ("training_flops", plots.loss_vs_flops)):
    fit = loss_fit(rows, x_key)
    if fit is not None:
      analysis["fits"][f"loss_vs_{x_key}"] = fit.to_dict()
    written += plots.save(plot(rows, fit, ylabel=ylabel), figures, f"loss_vs_{x_key}")
  if images:
    written += _image_figures(rows, subset, figures, analysis)
  for t, s in _tasks(rows):
    if s != "all" and (t, s) != (task, subset):
      continue
    safe = f"{t}_{s}".replace("/", "_").replace("+", "add").replace("=", "")
    written += plots.save(plots.capability_vs_params(rows, t, s), figures, f"capability_{safe}")
    analysis["emergence"][f"{t}/{s}"] = emergence_for(rows, t, s)
  files.write_json(layout.analysis, analysis)

  print(_image_table(rows, subset) if images else _summary_table(rows, task, subset))
  for name, fit in analysis["fits"].items():
    p, ci = fit["params"], fit["ci"]
    print(f"\n{name}: " + ", ".join(
        f"{k} = {v:.4g}" + (f" [{ci[k][0]:.3g}, {ci[k][1]:.3g}]" if k in ci else "")
        for k, v in p.items()))
  report = analysis["emergence"].get(f"{task}/{subset}")
  if report:
    print("\n" + emergence.format_report(report))
  print(f"\nresults table: {layout.results_csv}")
  print(f"figures:       {figures}/ ({len(written) // 2} figures, PNG and SVG)")
  print(f"analysis:      {layout.analysis}")
  sys.stdout.flush()
  return 0
