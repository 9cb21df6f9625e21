"""The `scaling` command: `scaling train|bench ...`.

Config overrides follow the subcommand's flags as `--config.section.key=value`. Errors a
user can cause are printed as one line `error: ...` with exit code 1.
"""

from __future__ import annotations

import argparse
import os
import sys

from scaling.config import ConfigError


def _split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
  """Separates `--config.a.b=v` (or `--config.a.b v`) overrides from other arguments."""
  rest, overrides = [], []
  i = 0
  while i < len(argv):
    arg = argv[i]
    if arg.startswith("--config."):
      body = arg[len("--config."):]
      if "=" not in body and i + 1 < len(argv):
        body, i = f"{body}={argv[i + 1]}", i + 1
      overrides.append(body)
    else:
      rest.append(arg)
    i += 1
  return rest, overrides


def _load_config(spec: str, overrides: list[str]):
  from scaling import config as config_lib
  cfg = config_lib.load(spec)
  config_lib.apply_overrides(cfg, overrides)
  return cfg


def _cmd_train(args, overrides) -> int:
  from scaling import config as config_lib
  cfg = _load_config(args.config, overrides)
  workdir = args.workdir or os.path.join("runs", config_lib.run_name(cfg))
  from scaling.train import loop
  code = loop.train(cfg, workdir)
  print(f"run directory: {workdir}", file=sys.stderr)
  return code


def _cmd_bench(args, overrides) -> int:
  cfg = _load_config(args.config, overrides)
  from scaling import bench
  result = bench.bench_train(cfg, steps=args.steps, warmup=args.warmup)
  bench.report(result, args.json)
  return 0


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="scaling", description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="command", required=True)

  p = sub.add_parser("train", help="train (or resume) one model from a config")
  p.add_argument("--config", required=True, help="config file, optionally FILE.py:ARG")
  p.add_argument("--workdir", help="run directory (default: runs/<name>-<config hash>)")
  p.set_defaults(func=_cmd_train)

  p = sub.add_parser("bench", help="measure speed and memory")
  p.add_argument("what", choices=["train"])
  p.add_argument("--config", required=True)
  p.add_argument("--steps", type=int, default=10, help="timed steps")
  p.add_argument("--warmup", type=int, default=2, help="untimed steps after compiling")
  p.add_argument("--json", help="also write the result to this JSON file")
  p.set_defaults(func=_cmd_bench)
  return parser


def main(argv: list[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  rest, overrides = _split_overrides(argv)
  args = build_parser().parse_args(rest)
  try:
    return args.func(args, overrides)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print("error: interrupted", file=sys.stderr)
    return 130


if __name__ == "__main__":
  sys.exit(main())
