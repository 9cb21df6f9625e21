"""The `scaling` command: `scaling train|sample|eval|sweep|plot|reproduce|bench ...`.

Config overrides follow the subcommand's flags as `--config.section.key=value`. Errors a
user can cause are printed as one line `error: ...` with exit code 1.
"""

from __future__ import annotations

import argparse
import os
import sys

from scaling.config import UserError


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
  if args.coordinator or args.num_processes is not None or args.distributed:
    from scaling import distributed
    distributed.initialize(args.coordinator, args.num_processes, args.process_id,
                           timeout_s=args.distributed_timeout)
  cfg = _load_config(args.config, overrides)
  workdir = args.workdir or os.path.join("runs", config_lib.run_name(cfg))
  from scaling.train import loop
  code = loop.train(cfg, workdir)
  print(f"run directory: {workdir}", file=sys.stderr)
  return code


def _cmd_sample(args, overrides) -> int:
  if overrides:
    raise UserError("scaling sample takes no --config overrides")
  prompts = list(args.prompt or [])
  if args.prompts_file:
    try:
      with open(args.prompts_file) as f:
        prompts += [line.rstrip("\n") for line in f if line.strip()]
    except OSError as e:
      raise UserError(f"cannot read --prompts_file: {e.strerror}: {args.prompts_file}") from None
  from scaling import runs
  from scaling.generate import sampling, text
  cfg = sampling.SamplingConfig(temperature=args.temperature, top_k=args.top_k,
                                top_p=args.top_p, min_p=args.min_p)
  try:
    cfg.validate()
  except ValueError as e:
    raise UserError(str(e)) from None
  if not prompts:
    raise UserError("give --prompt TEXT (repeatable) or --prompts_file FILE")
  run = runs.load(args.workdir)
  completions = text.complete(run, prompts, n=args.n, cfg=cfg,
                              max_new_tokens=args.max_new_tokens, seed=args.seed)
  for prompt, outs in zip(prompts, completions):
    for out in outs:
      print(f"{prompt}{out}")
  return 0


def _cmd_eval(args, overrides) -> int:
  if overrides:
    raise UserError("scaling eval takes no --config overrides")
  from scaling.evals import report
  from scaling.evals import run as eval_run
  suite_names = [s for s in args.suite.split(",") if s] if args.suite else []
  if not suite_names and not args.task:
    raise UserError("nothing to evaluate: give --suite and/or --task")
  result = eval_run.evaluate(args.workdir, suite_names=suite_names, task_files=args.task or [],
                             n_per_subset=args.n, batch=args.batch)
  print(report.table(result))
  print(f"wrote {os.path.join(args.workdir, 'eval.json')}", file=sys.stderr)
  return 0


def _cmd_sweep(args, overrides) -> int:
  from scaling.sweep import run as sweep_run
  if args.action == "run":
    if not args.config:
      raise UserError("scaling sweep run needs --config=SWEEP.py")
    from scaling.sweep.local import Interrupted
    try:
      directory, rows = sweep_run.run(args.config, overrides, args.dir)
    except Interrupted:
      print("\nsweep interrupted: the running trial saved a checkpoint; run the same command "
            "to continue", file=sys.stderr)
      return 130
    return _plot(directory)
  directory = args.dir or args.path
  if not directory:
    raise UserError(f"scaling sweep {args.action} needs a sweep directory (--dir)")
  if args.action == "status":
    print("\n".join(sweep_run.status_lines(directory)))
    return 0
  from scaling.sweep import results
  _, trials = sweep_run.load_saved(directory)
  results.collect(directory, trials)
  print(f"wrote {os.path.join(directory, 'results.csv')} and results.jsonl")
  return 0


def _plot(directory: str) -> int:
  from scaling.analysis import report
  return report.analyze(directory)


def _cmd_plot(args, overrides) -> int:
  if overrides:
    raise UserError("scaling plot takes no --config overrides")
  return _plot(args.sweep_dir)


def _cmd_reproduce(args, overrides) -> int:
  if overrides:
    raise UserError("scaling reproduce takes no --config overrides")
  from scaling.sweep import reproduce
  return reproduce.reproduce(args.run_dir, args.workdir)


def _cmd_bench(args, overrides) -> int:
  cfg = _load_config(args.config, overrides)
  from scaling import bench
  if args.what == "decode":
    results = [bench.bench_decode(cfg, batch=args.batch, prompt_len=args.prompt_len,
                                  new_tokens=n) for n in args.new_tokens]
    bench.report_decode(results, args.json)
    return 0
  result = bench.bench_train(cfg, steps=args.steps, warmup=args.warmup)
  bench.report(result, args.json)
  return 0


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="scaling", description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="command", required=True)

  p = sub.add_parser("train", help="train (or resume) one model from a config")
  p.add_argument("--config", required=True, help="config file, optionally FILE.py:ARG")
  p.add_argument("--workdir", help="run directory (default: runs/<name>-<config hash>)")
  p.add_argument("--distributed", action="store_true",
                 help="join a multi-process run detected from the cluster (SLURM, Cloud TPU)")
  p.add_argument("--coordinator", help="multi-process run: HOST:PORT of process 0")
  p.add_argument("--num_processes", type=int, help="multi-process run: number of processes")
  p.add_argument("--process_id", type=int, help="multi-process run: this process's id")
  p.add_argument("--distributed_timeout", type=int, default=300,
                 help="seconds to wait for every process to join")
  p.set_defaults(func=_cmd_train)

  p = sub.add_parser("sample", help="generate text from a trained run")
  p.add_argument("--workdir", required=True, help="run directory to load")
  p.add_argument("--prompt", action="append", help="prompt text (repeat for a batch)")
  p.add_argument("--prompts_file", help="file with one prompt per line")
  p.add_argument("-n", type=int, default=1, help="samples per prompt")
  p.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
  p.add_argument("--top_k", type=int, default=0, help="0 = off")
  p.add_argument("--top_p", type=float, default=1.0, help="1.0 = off")
  p.add_argument("--min_p", type=float, default=0.0, help="0 = off")
  p.add_argument("--max_new_tokens", type=int, help="default: up to the model's context")
  p.add_argument("--seed", type=int, default=0)
  p.set_defaults(func=_cmd_sample)

  p = sub.add_parser("eval", help="score a trained run on benchmark suites; writes eval.json")
  p.add_argument("--workdir", required=True, help="run directory to evaluate")
  p.add_argument("--suite", default="arithmetic",
                 help="comma-separated: arithmetic, analogy, webb (default: arithmetic)")
  p.add_argument("--task", action="append", help="BIG-bench task.json or folder (repeatable)")
  p.add_argument("-n", type=int, default=500, help="items per subset of generated suites")
  p.add_argument("--batch", type=int, default=128)
  p.set_defaults(func=_cmd_eval)

  p = sub.add_parser("sweep", help="train and evaluate a family of models: run|status|collect")
  p.add_argument("action", choices=["run", "status", "collect"])
  p.add_argument("path", nargs="?", help="sweep directory (status, collect)")
  p.add_argument("--config", help="sweep config file (run)")
  p.add_argument("--dir", help="sweep directory (default: sweeps/<name>)")
  p.set_defaults(func=_cmd_sweep)

  p = sub.add_parser("plot", help="fit scaling laws and draw figures from a sweep's results")
  p.add_argument("sweep_dir")
  p.set_defaults(func=_cmd_plot)

  p = sub.add_parser("reproduce", help="re-run a trial from its config.json and compare")
  p.add_argument("run_dir")
  p.add_argument("--workdir", help="where to re-run (default: <run_dir>-reproduced)")
  p.set_defaults(func=_cmd_reproduce)

  p = sub.add_parser("bench", help="measure speed and memory")
  p.add_argument("what", choices=["train", "decode"])
  p.add_argument("--config", required=True)
  p.add_argument("--steps", type=int, default=10, help="train: timed steps")
  p.add_argument("--warmup", type=int, default=2, help="train: untimed steps after compiling")
  p.add_argument("--batch", type=int, default=8, help="decode: sequences")
  p.add_argument("--prompt_len", type=int, default=16, help="decode: prompt tokens")
  p.add_argument("--new_tokens", type=int, nargs="+", default=[64, 512],
                 help="decode: generated tokens (several values: one row each)")
  p.add_argument("--json", help="also write the result to this JSON file")
  p.set_defaults(func=_cmd_bench)
  return parser


def main(argv: list[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  rest, overrides = _split_overrides(argv)
  args = build_parser().parse_args(rest)
  try:
    return args.func(args, overrides)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print("error: interrupted", file=sys.stderr)
    return 130


if __name__ == "__main__":
  sys.exit(main())
