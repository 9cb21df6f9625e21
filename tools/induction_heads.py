"""The induction-head study: attention-only models of 1, 2 and 3 layers trained on the
UDHR's text (offline), measured at every kept checkpoint.

    python tools/induction_heads.py --out experiments/induction_heads --work sweeps/induction_heads

Per run and checkpoint: the largest induction score over heads (on repeated random
sequences), the loss the repeat saves, and the in-context improvement on held-out text
(`scaling.analysis.heads`). Then the emergence test (`scaling.analysis.emergence`) of the
induction score against training steps per run, and against parameters at the end.
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import numpy as np

from scaling import config as config_lib
from scaling import exits, files, log, runs
from scaling.analysis import emergence, head_report, heads
from scaling.analysis.plots import label, plt, save
from scaling.families import family_for
from scaling.train import loop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 2000
KEEP = (50, 100, 150, 200, 300, 400, 500, 600, 800, 1000, 1250, 1500, 1750, 2000)
# Depth is what the known result turns on (one layer cannot compose two heads); on 2 cores
# the study affords three attention-only depths at one width.
VARIANTS = [(f"attn-L{layers}-w64", layers, 64, "none") for layers in (1, 2, 3)]
REPEAT, SEQUENCES = 40, 16


def config(layers: int, width: int, mlp: str):
  cfg = config_lib.load(os.path.join(ROOT, "configs/lm/text.py:size=tiny"))
  config_lib.apply_overrides(cfg, [
      "data.mixture=(('text:udhr', 1.0),)", "data.vocab_size=4608", f"model.n_layers={layers}",
      f"model.d_model={width}", "model.n_heads=4", "model.n_kv_heads=4",
      f"model.d_ff={4 * width}", f"model.mlp='{mlp}'", f"train.steps={STEPS}",
      "train.warmup_steps=30", "train.log_every=50", "eval.every_steps=0",
      "checkpoint.every_steps=0", f"checkpoint.keep_steps={KEEP}",
      f"checkpoint.max_to_keep={len(KEEP)}"])
  return cfg


def measure(workdir: str, step: int) -> dict:
  run = runs.load(workdir, devices=jax.devices()[:1], step=step)
  data = run.family.load_data()
  tokens = heads.repeated_random_tokens(SEQUENCES, REPEAT, run.model.vocab_size,
                                        pool=head_report.frequent_tokens(run, data))
  logits, probs, _ = heads.probe(run.model, tokens)
  scores = heads.induction_scores(probs, REPEAT)
  by_position, counts = head_report.loss_by_position(run, data, max_batches=2)
  return {"step": step, "induction_max": float(scores.max()),
          "induction_by_layer": scores.max(axis=1).tolist(),
          "repeat_loss_drop": heads.repeat_loss_drop(logits, tokens, REPEAT),
          "in_context": heads.in_context_improvement(by_position, counts)["improvement"]}


def figure(study: dict, key: str, ylabel: str, title: str):
  fig, ax = plt.subplots(figsize=(7, 4.4))
  for i, (name, r) in enumerate(study["runs"].items()):
    steps = [c["step"] for c in r["checkpoints"]]
    ax.plot(steps, [c[key] for c in r["checkpoints"]], "o-" if name.startswith("attn") else
            "s--", color=f"C{i}", markersize=3, label=f"{name} ({r['params']:,})")
  ax.set_xscale("log")
  label(ax, "training step", ylabel, title, legend_size=7)
  fig.tight_layout()
  return fig


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(ROOT, "experiments", "induction_heads"))
  parser.add_argument("--work", default=os.path.join(ROOT, "sweeps", "induction_heads"))
  args = parser.parse_args(argv)
  log.setup()
  study = {"steps": STEPS, "kept": KEEP, "repeat_length": REPEAT, "sequences": SEQUENCES,
           "runs": {}}
  for name, layers, width, mlp in VARIANTS:
    cfg = config(layers, width, mlp)
    workdir = os.path.join(args.work, name)
    if loop.train(cfg, workdir, devices=jax.devices()[:1]) != exits.OK:
      print(f"{name}: training did not finish", file=sys.stderr)
      return 1
    params = family_for(cfg).params().non_embedding
    checkpoints = [measure(workdir, step) for step in KEEP]
    study["runs"][name] = {"layers": layers, "width": width, "mlp": mlp,
                           "params": params, "checkpoints": checkpoints}
    last = checkpoints[-1]
    print(f"{name}: {params:,} non-embedding parameters; induction {last['induction_max']:.3f}, "
          f"repeat drop {last['repeat_loss_drop']:.3f} nats at step {STEPS}", flush=True)
  for name, r in study["runs"].items():
    x = np.log10([c["step"] for c in r["checkpoints"]])
    r["emergence_vs_steps"] = emergence.emergence_report(
        x, {"induction_score": (np.array([c["induction_max"] for c in r["checkpoints"]]),
                                None, None)}, task=f"{name} against log10(step)")
  attention_only = [r for r in study["runs"].values() if r["mlp"] == "none"]
  study["emergence_vs_params"] = emergence.emergence_report(
      np.log10([r["params"] for r in attention_only]),  # (fewer than 4 sizes: insufficient)
      {"induction_score": (np.array([r["checkpoints"][-1]["induction_max"]
                                     for r in attention_only]), None, None)},
      task="attention-only models at the last step, against log10(non-embedding params)")
  os.makedirs(args.out, exist_ok=True)
  files.write_json(os.path.join(args.out, "study.json"), files.jsonable(study))
  for key, ylabel, title in (
      ("induction_max", "largest induction score over heads", "Induction heads over training"),
      ("repeat_loss_drop", "loss on first half - loss on repeat (nats)",
       "What copying from context buys"),
      ("in_context", "held-out loss at 10% minus at 98% of the context (nats)",
       "In-context improvement")):
    save(figure(study, key, ylabel, title), args.out, key)
  for name, r in study["runs"].items():
    print(emergence.format_report(r["emergence_vs_steps"]))
  print(emergence.format_report(study["emergence_vs_params"]))
  return 0


if __name__ == "__main__":
  sys.exit(main())
