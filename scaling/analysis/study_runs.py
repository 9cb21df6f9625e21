"""The runs of a sweep a tool-run study reads: one row per run that has what it needs."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from scaling import files
from scaling.analysis.plots import save
from scaling.errors import UserError


def read_rows(sweep: str, run_row: Callable[[str], dict | None], needs: str) -> list[dict]:
  """`run_row(run directory)` of every run under `sweep/runs`, by size then seed; runs it
  returns None for are skipped. One `UserError` line when there is no run to read; `needs`
  says what a run must have ("has an eval.json with ...")."""
  runs_dir = os.path.join(sweep, "runs")
  if not os.path.isdir(runs_dir):
    raise UserError(f"{sweep} is not a sweep directory (no runs/ in it)")
  rows = [r for name in sorted(os.listdir(runs_dir))
          if (r := run_row(os.path.join(runs_dir, name))) is not None]
  if not rows:
    raise UserError(f"no run under {runs_dir} {needs}")
  return sorted(rows, key=lambda r: (r["params"], r["seed"]))


def command_line(argv, doc: str, run_row: Callable[[str], dict | None],
                 needs: str) -> tuple[list[dict], str] | None:
  """A study tool's `SWEEP --out OUT` arguments and the sweep's rows, with OUT created;
  None after printing one `error:` line when there is no run to read."""
  parser = argparse.ArgumentParser(description=doc.splitlines()[0])
  parser.add_argument("sweep")
  parser.add_argument("--out", required=True)
  args = parser.parse_args(argv)
  try:
    rows = read_rows(args.sweep, run_row, needs)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return None
  os.makedirs(args.out, exist_ok=True)
  return rows, args.out


def write(out: str, study: dict, table: str, figure) -> None:
  """A study's `study.json`, `table.md` and `vs_size` figure in `out`; prints the table."""
  files.write_json(os.path.join(out, "study.json"), files.jsonable(study))
  with open(os.path.join(out, "table.md"), "w") as f:
    f.write(table)
  save(figure, out, "vs_size")
  print(table)
