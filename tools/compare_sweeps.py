"""Image sweeps side by side: `python tools/compare_sweeps.py LABEL=SWEEP_DIR ...`.

Prints a markdown table with, per sweep, size and learning rate, the median FD, KID,
class accuracy, precision, recall, class coverage and coverage over the seeds at each
sweep's headline setting, and how many trials collapsed or diverged
(`scaling.analysis.collapse` has the rule). Reads only each sweep's `results.jsonl` and `sweep.json`.
"""

from __future__ import annotations

import argparse
import os
import sys

from scaling import files
from scaling.analysis import checkpoints, collapse
from scaling.errors import UserError
from scaling.sweep import results
from scaling.sweep.layout import SweepDir


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("sweeps", nargs="+", metavar="LABEL=SWEEP_DIR")
  args = parser.parse_args(argv)
  sweeps = {}
  try:
    for item in args.sweeps:
      label, sep, directory = item.partition("=")
      if not sep:
        raise UserError(f"expected LABEL=SWEEP_DIR, got {item!r}")
      layout = SweepDir(directory)
      if not os.path.exists(layout.results):
        raise UserError(f"{directory} has no results.jsonl (run `scaling sweep collect`)")
      headline = files.read_json(layout.sweep, default={}).get("headline") or ()
      if len(headline) != 2 or headline[0] != "image_quality":
        raise UserError(f"{directory}: its headline is not an image_quality setting")
      rows = [r for r in results.read(layout.results) if checkpoints.is_final(r)]
      sweeps[label] = (rows, headline[1])
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(collapse.summary_table(sweeps))
  return 0


if __name__ == "__main__":
  sys.exit(main())
