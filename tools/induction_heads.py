"""The induction-head study: attention-only and full models of 1, 2 and 3 layers, on the
Latin-script UDHR (offline) and on repeated random strings, measured at every kept checkpoint.

    python tools/induction_heads.py --out experiments/induction_heads --work sweeps/induction_heads

Per run and checkpoint: the largest induction score over heads (on repeated random
sequences), the loss the repeat saves, and the in-context improvement on held-out text
(`scaling.analysis.heads`). Then the emergence test (`scaling.analysis.emergence`) of the
induction score against training steps per run, and against parameters at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
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
REPEAT, SEQUENCES = 40, 16


@dataclasses.dataclass(frozen=True)
class Ladder:
  """One data set's models: every (mlp, depth, width), trained for `steps`."""
  data: tuple[str, ...]     # overrides of the `data` and `train` sections
  steps: int
  keep: tuple[int, ...]
  variants: tuple[tuple[str, int, int], ...]  # (mlp, layers, width)


LADDERS = {
    # The Latin-script UDHR (350-odd languages, none common enough to memorise): natural
    # text, where copying from context is one predictor among many.
    "text": Ladder(
        data=("data.mixture=(('text:udhr/latin', 1.0),)", "data.vocab_size=1024",
              "data.seq_len=256", "data.num_train=8192", "data.num_eval=64",
              "train.batch_size=32"),
        steps=1000, keep=(25, 50, 100, 150, 200, 300, 400, 600, 800, 1000),
        variants=tuple((mlp, layers, 64) for mlp in ("none", "gelu") for layers in (1, 2, 3))),
    # Repeated random strings: copying is the only predictor of the answer, so the
    # mechanism forms within this budget (the control, and the probe's own distribution).
    "repeat": Ladder(
        data=("data.mixture=(('repeat', 1.0),)", "data.vocab_size=320", "data.seq_len=88",
              "data.num_train=65536", "data.num_eval=256", "train.batch_size=32"),
        steps=2000, keep=(50, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1200,
                          1400, 1600, 2000),
        variants=tuple((mlp, layers, width) for mlp in ("none", "gelu") for width in (32, 64)
                       for layers in (1, 2, 3))),
}


def name_of(ladder: str, mlp: str, layers: int, width: int, tied: bool = False) -> str:
  return (f"{ladder}-{'attn' if mlp == 'none' else 'full'}-L{layers}-w{width}"
          f"{'-tied' if tied else ''}")


def config(ladder: Ladder, mlp: str, layers: int, width: int, tied: bool = False):
  """configs/lm/text.py's tiny model with the ladder's data, depth, width and MLP. The
  readout is untied, as in Olsson et al.: with the readout tied to the embedding, a
  two-layer model learns to copy through heads the induction score does not see."""
  cfg = config_lib.load(os.path.join(ROOT, "configs/lm/text.py:size=tiny"))
  config_lib.apply_overrides(cfg, [
      *ladder.data, f"model.n_layers={layers}", f"model.d_model={width}", "model.n_heads=4",
      "model.n_kv_heads=4", f"model.d_ff={4 * width}", f"model.mlp='{mlp}'",
      f"model.tie_embeddings={tied}", f"train.steps={ladder.steps}",
      "train.warmup_steps=30", "train.log_every=50", "eval.every_steps=0",
      "checkpoint.every_steps=0", f"checkpoint.keep_steps={ladder.keep}",
      f"checkpoint.max_to_keep={len(ladder.keep)}"])
  return cfg


def measure(workdir: str, steps: tuple[int, ...]) -> list[dict]:
  """Each kept checkpoint's measures; the held-out data and the probe's sequences (drawn
  from its commonest tokens) are read once, from the first."""
  data = tokens = None
  out = []
  for step in steps:
    run = runs.load(workdir, devices=jax.devices()[:1], step=step)
    if data is None:
      data = run.family.load_data()
      tokens = heads.repeated_random_tokens(SEQUENCES, REPEAT, run.model.vocab_size,
                                            pool=head_report.frequent_tokens(run, data))
    out.append(measure_one(run, data, tokens, step))
  return out


def measure_one(run, data: dict, tokens, step: int) -> dict:
  logits, probs, _ = heads.probe(run.model, tokens)
  scores = heads.induction_scores(probs, REPEAT)
  by_position, counts = head_report.loss_by_position(run, data, max_batches=2)
  return {"step": step, "induction_max": float(scores.max()),
          "induction_by_layer": scores.max(axis=1).tolist(),
          "repeat_loss": float(heads.token_losses(logits, tokens)[:, REPEAT + 1:].mean()),
          "repeat_loss_drop": heads.repeat_loss_drop(logits, tokens, REPEAT),
          "in_context": heads.in_context_improvement(by_position, counts)["improvement"]}


def figure(runs_: dict, key: str, ylabel: str, title: str):
  fig, ax = plt.subplots(figsize=(7, 4.4))
  for i, (name, r) in enumerate(runs_.items()):
    points = [(c["step"], c[key]) for c in r["checkpoints"] if c[key] is not None]
    ax.plot(*zip(*points), "o-" if r["mlp"] == "none" else "s--", color=plt.cm.tab20(i % 20),
            markersize=3, label=f"{name} ({r['params']:,})")
  ax.set_xscale("log")
  label(ax, "training step", ylabel, title, legend_size=7)
  fig.tight_layout()
  return fig


def train_and_measure(ladder_name: str, work: str, mlp: str, layers: int, width: int,
                      tied: bool = False) -> dict | None:
  ladder = LADDERS[ladder_name]
  cfg = config(ladder, mlp, layers, width, tied)
  name = name_of(ladder_name, mlp, layers, width, tied)
  workdir = os.path.join(work, name)
  if loop.train(cfg, workdir, devices=jax.devices()[:1]) != exits.OK:
    print(f"error: {name}: training did not finish (see {workdir})", file=sys.stderr)
    return None
  checkpoints = measure(workdir, ladder.keep)
  last = checkpoints[-1]
  params = family_for(cfg).params().non_embedding
  print(f"{name}: {params:,} non-embedding parameters; largest induction score "
        f"{last['induction_max']:.3f}, loss on the repeat {last['repeat_loss']:.2f} nats at "
        f"step {ladder.steps}", flush=True)
  x = np.log10([c["step"] for c in checkpoints])
  return {"ladder": ladder_name, "layers": layers, "width": width, "mlp": mlp, "tied": tied,
          "params": params, "checkpoints": checkpoints,
          "emergence_vs_steps": emergence.emergence_report(
              x, {"induction_score": (np.array([c["induction_max"] for c in checkpoints]),
                                      None, None)}, task=f"{name} against log10(step)")}


def write(study: dict, out: str) -> None:
  """study.json, the figures per data set, and the emergence reports on stdout."""
  os.makedirs(out, exist_ok=True)
  files.write_json(os.path.join(out, "study.json"), files.jsonable(study))
  for ladder_name in LADDERS:
    runs_ = {n: r for n, r in study["runs"].items() if r["ladder"] == ladder_name}
    for key, ylabel, title in (
        ("induction_max", "largest induction score over heads", "Induction heads over training"),
        ("repeat_loss", "loss on the repeated half (nats)", "Copying a repeated sequence"),
        ("in_context", "held-out loss at 10% minus at 98% of the context (nats)",
         "In-context improvement")):
      if any(c[key] is not None for r in runs_.values() for c in r["checkpoints"]):
        save(figure(runs_, key, ylabel, f"{title} ({ladder_name})"), out,
             f"{ladder_name}_{key}")
  for r in study["runs"].values():
    print(emergence.format_report(r["emergence_vs_steps"]))
  for report in study["emergence_vs_params"].values():
    print(emergence.format_report(report))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(ROOT, "experiments", "induction_heads"))
  parser.add_argument("--work", default=os.path.join(ROOT, "sweeps", "induction_heads"))
  parser.add_argument("--replot", action="store_true",
                      help="redraw the figures and reprint the reports from OUT/study.json")
  args = parser.parse_args(argv)
  log.setup()
  if args.replot:
    path = os.path.join(args.out, "study.json")
    if not os.path.exists(path):
      print(f"error: --replot needs {path}; run the study first", file=sys.stderr)
      return 2
    with open(path) as f:
      study = json.load(f)
    if not all("ladder" in r for r in study["runs"].values()):
      print(f"error: {path} is from an earlier version of this study (its runs name no "
            f"ladder); run the study again", file=sys.stderr)
      return 2
    write(study, args.out)
    return 0
  study = {"repeat_length": REPEAT, "sequences": SEQUENCES,
           "ladders": {k: dataclasses.asdict(v) for k, v in LADDERS.items()}, "runs": {}}
  # The control first (minutes), then the text ladder; and one tied-readout control model.
  jobs = [("repeat", *v, False) for v in LADDERS["repeat"].variants]
  jobs += [("repeat", "none", 2, 64, True)]
  jobs += [("text", *v, False) for v in LADDERS["text"].variants]
  for ladder_name, mlp, layers, width, tied in jobs:
    result = train_and_measure(ladder_name, args.work, mlp, layers, width, tied)
    if result is None:
      return 1
    study["runs"][name_of(ladder_name, mlp, layers, width, tied)] = result
  study["emergence_vs_params"] = {}
  for ladder_name in LADDERS:
    untied = [r for r in study["runs"].values() if r["ladder"] == ladder_name and not r["tied"]
              and r["mlp"] == "none"]
    study["emergence_vs_params"][ladder_name] = emergence.emergence_report(
        np.log10([r["params"] for r in untied]),
        {"induction_score": (np.array([r["checkpoints"][-1]["induction_max"] for r in untied]),
                             None, None)},
        task=f"{ladder_name}: attention-only models at the last step, against "
             f"log10(non-embedding params)")
  write(study, args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
