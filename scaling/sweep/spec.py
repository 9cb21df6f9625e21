"""Sweep specs: a base config and the axes to vary, expanded into fully resolved trials.

A sweep config file's `get_config(arg)` returns a ConfigDict with:

  name            the sweep's name (its default directory is `sweeps/<name>`)
  base            the base config, `path.py[:arg]`; sizes are added to its arg as `size=`
  sizes           a ladder of presets of the base config (`("s0", "s1", ...)`), or
  target_params   a ladder of non-embedding parameter counts, turned into shapes by `shape_for`
  seeds           parameter-init seeds; every seed and size sees the same data in the same order
  overrides       `section.key=value` strings applied to every trial
  size_overrides  {size: (overrides, ...)}, e.g. a learning rate per size
  tokens_per_param  > 0 sets each trial's steps to train on r x (its parameter count) tokens
  eval            {"suites": "arithmetic,analogy", "n": items per subset}
  headline        (task, subset) plotted and tested for a transition, e.g. ("arithmetic", "+3d")
  executor        "local" (default: one trial after another here) or "slurm" (an array job)
  slurm           the SLURM jobs' resources and waiting, see SLURM_DEFAULTS

Each trial is named by its config's content hash, so re-running a sweep finds finished
trials by name and skips them, and resumes interrupted ones from their checkpoints.
"""

from __future__ import annotations

import dataclasses
import math
import os

import ml_collections

from scaling import config as config_lib
from scaling.config import ConfigError
from scaling.models import counting

SWEEP_FIELDS = {"name", "base", "sizes", "target_params", "seeds", "overrides",
                "size_overrides", "tokens_per_param", "eval", "headline", "executor", "slurm"}
EXECUTORS = ("local", "slurm")
# Every trial is one job (an array task) of `nodes` x one task; `gpus_per_node` and
# `cpus_per_task` 0 mean "do not ask". Empty strings leave the cluster's defaults.
SLURM_DEFAULTS = dict(
    partition="", account="", qos="", constraint="",
    time="4:00:00",           # wall-clock limit per job, as sbatch --time takes it
    nodes=1, gpus_per_node=0, cpus_per_task=0, mem="",
    signal_grace_s=120,       # SIGTERM this long before the limit: save a checkpoint, requeue
    max_parallel=0,           # array throttle (`--array=...%N`); 0: no limit
    sbatch_args=(),           # any other sbatch options, e.g. ("--exclusive",)
    poll_s=15.0,              # how often the executor asks squeue
    timeout_s=0.0,            # give up waiting after this long (jobs keep running); 0: never
)


@dataclasses.dataclass(frozen=True)
class Trial:
  name: str           # run name: config name + content hash
  size: str
  seed: int
  cfg: ml_collections.ConfigDict

  @property
  def params(self) -> int:
    return counting.params_for(self.cfg).total


def shape_for(target_params: float) -> dict:
  """Width and depth for a non-embedding parameter count (about 12 L D^2 with d_ff = 4D).

  The rule keeps the aspect ratio D / L near 32 (Kaplan et al. 2020 found loss depends
  little on shape near there), D a multiple of 16 and the head dimension 16.
  """
  best = None
  for layers in range(1, 49):
    d = math.sqrt(target_params / (12 * layers))
    if d < 8:
      break
    score = abs(math.log(d / layers / 32))
    if best is None or score < best[0]:
      best = (score, layers, d)
  if best is None:
    raise ConfigError(f"sweep.target_params: {target_params:g} is too small for one layer")
  _, layers, d = best
  d_model = max(16, 16 * round(d / 16))
  return dict(d_model=d_model, n_layers=layers, n_heads=d_model // 16,
              n_kv_heads=d_model // 16, d_ff=4 * d_model)


def load(spec: str) -> ml_collections.ConfigDict:
  sweep = config_lib.load(spec)
  unknown = set(sweep.keys()) - SWEEP_FIELDS
  if unknown:
    raise ConfigError(f"unknown sweep field: {sorted(unknown)[0]}")
  for field in ("name", "base", "seeds"):
    if field not in sweep:
      raise ConfigError(f"sweep.{field} is required")
  _executor_defaults(sweep)
  # A relative base path is taken from the working directory, else from the repository
  # the sweep file lives in (configs/sweeps/x.py -> the folder above configs/).
  base_path, sep, base_arg = sweep.base.partition(":")
  if not os.path.isabs(base_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        spec.partition(":")[0]))))
    for candidate in (os.path.abspath(base_path), os.path.join(root, base_path)):
      if os.path.exists(candidate):
        with sweep.unlocked():
          sweep.base = candidate + sep + base_arg
        break
  return sweep


def _executor_defaults(sweep: ml_collections.ConfigDict) -> None:
  """Fills in `executor` and every `slurm` field, so overrides can name any of them."""
  given = dict(sweep.get("slurm") or {})
  unknown = set(given) - set(SLURM_DEFAULTS)
  if unknown:
    raise ConfigError(f"unknown sweep field: slurm.{sorted(unknown)[0]}")
  with sweep.unlocked():
    sweep.executor = sweep.get("executor", "local")
    sweep.slurm = ml_collections.ConfigDict({**SLURM_DEFAULTS, **given})


def _steps_for_budget(cfg, tokens_per_param: float) -> int:
  if cfg.model.kind != "lm":
    raise ConfigError("sweep.tokens_per_param: token budgets are for language models; "
                      "set train.steps for image models")
  params = counting.lm_params(cfg.model, cfg.data.vocab_size).total
  tokens_per_step = cfg.train.batch_size * cfg.data.seq_len
  return max(1, math.ceil(tokens_per_param * params / tokens_per_step))


def trials(sweep: ml_collections.ConfigDict) -> list[Trial]:
  """Every (size, seed) of the sweep as a resolved config; nothing is trained or written."""
  sizes = tuple(sweep.get("sizes", ()) or ())
  targets = tuple(sweep.get("target_params", ()) or ())
  if bool(sizes) == bool(targets):
    raise ConfigError("sweep: give exactly one non-empty ladder, sizes or target_params")
  if not sweep.seeds:
    raise ConfigError("sweep.seeds: needs at least one seed")
  base_path, _, base_arg = sweep.base.partition(":")
  size_overrides = dict(sweep.get("size_overrides", {}) or {})
  for size in size_overrides:
    if size not in (sizes or tuple(f"{t:g}" for t in targets)):
      raise ConfigError(f"sweep.size_overrides: {size!r} is not on the ladder")
  out = []
  for size in sizes or targets:
    label = size if sizes else f"{size:g}"
    for seed in sweep.seeds:
      if sizes:
        arg = ",".join(filter(None, [base_arg, f"size={size}"]))
        try:
          cfg = config_lib.load(f"{base_path}:{arg}")
        except ValueError as e:
          raise ConfigError(f"sweep.sizes: {size!r}: {e}") from None
      else:
        cfg = config_lib.load(sweep.base)
        config_lib.apply_overrides(cfg, [f"model.{k}={v}" for k, v in shape_for(size).items()])
        with cfg.unlocked():
          cfg.name = f"{cfg.name.rsplit('-', 1)[0]}-n{label}"
      config_lib.apply_overrides(cfg, [*sweep.get("overrides", ()),
                                       *size_overrides.get(label, ()), f"seed={seed}"])
      if sweep.get("tokens_per_param", 0):
        with cfg.unlocked():
          cfg.train.steps = _steps_for_budget(cfg, sweep.tokens_per_param)
      out.append(Trial(config_lib.run_name(cfg), label, int(seed), cfg))
  return out


def check(trial_list: list[Trial], devices=None) -> None:
  """Validates every trial's config for these devices before anything trains."""
  from scaling.train.validate import validate
  for t in trial_list:
    try:
      validate(t.cfg, devices)
    except ConfigError as e:
      raise ConfigError(f"trial {t.size} seed {t.seed}: {e}") from None


def sweep_dir(sweep, directory: str | None) -> str:
  return directory or os.path.join("sweeps", sweep.name)
