"""pass@1 and pass@10 of one trained run's programs against the sampling temperature.

    python tools/code_temperature.py --workdir=RUN [--temperatures=0,0.2,0.4,0.8,1.0]
        [--top_p=1.0,0.95] [--samples=20] [-n=100] [--out=RUN/code_temperature]

Samples every held-out problem of the code suite at each (temperature, top-p) from the same
seed, and writes OUT.json (pass@k with 95% intervals per level and overall, per setting)
and OUT.png / OUT.svg (pass@1 and pass@10 against temperature, one line per top-p).
"""

from __future__ import annotations

import argparse
import os
import sys

from scaling import files, runs
from scaling.analysis import code_plots, plots
from scaling.errors import UserError
from scaling.evals import code


def _floats(flag: str, text: str) -> tuple[float, ...]:
  try:
    values = tuple(float(v) for v in text.split(",") if v)
  except ValueError:
    raise UserError(f"{flag}: expected comma-separated numbers, got {text!r}") from None
  if not values:
    raise UserError(f"{flag}: give at least one value")
  return values


def _check(settings: code.Settings) -> None:
  try:
    settings.sampling
  except ValueError as e:
    raise UserError(str(e)) from None


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="a trained language-model run")
  parser.add_argument("--temperatures", default="0,0.2,0.4,0.8,1.0")
  parser.add_argument("--top_p", default="1.0,0.95", help="comma-separated top-p values")
  parser.add_argument("--samples", type=int, default=20, help="programs per problem")
  parser.add_argument("-n", type=int, default=100, help="held-out problems per level")
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", help="path without extension (default: RUN/code_temperature)")
  args = parser.parse_args(argv)
  try:
    temperatures = _floats("--temperatures", args.temperatures)
    top_ps = _floats("--top_p", args.top_p)
    if min(args.samples, args.n, args.batch, args.seed + 1) < 1:
      raise UserError("--samples, -n and --batch must be at least 1, --seed at least 0")
    for t, p in ((t, p) for t in temperatures for p in top_ps):
      _check(code.Settings(args.samples, t, p, args.seed))  # all of them, before sampling
    run = runs.load(args.workdir)
    study = code.temperature_sweep(run, temperatures=temperatures, top_ps=top_ps,
                                   samples=args.samples, n_per_level=args.n,
                                   batch=args.batch, seed=args.seed)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  out = args.out or os.path.join(args.workdir, "code_temperature")
  files.write_json(f"{out}.json", study)
  paths = plots.save(code_plots.temperature_figure(study), os.path.dirname(os.path.abspath(out)),
                     os.path.basename(out))
  print(f"wrote {out}.json and {', '.join(paths)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
