"""Sweep specs: a base config and the axes to vary, expanded into fully resolved trials.

A sweep config file's `get_config(arg)` returns a ConfigDict with the fields of
`base_sweep()` (any it omits take their defaults):

  name            the sweep's name (its default directory is `sweeps/<name>`)
  base            the base config, `path.py[:arg]`; sizes are added to its arg as `size=`
  sizes           a ladder of presets of the base config (`("s0", "s1", ...)`), or
  target_params   a ladder of non-embedding parameter counts, turned into shapes by `shape_for`
  seeds           parameter-init seeds; every seed and size sees the same data in the same order
  overrides       `section.key=value` strings applied to every trial
  size_overrides  {size: (overrides, ...)}, e.g. a learning rate per size
  tokens_per_param  > 0 sets each trial's steps to train on r x (its parameter count) tokens
  learning_rates  a grid crossed with every size and seed (the table picks the best per size)
  flop_budgets    IsoFLOP profiles: at each budget every size trains for C / (its FLOPs per
                  step) steps (sizes below `isoflop_min_steps`, default 2 x warmup, drop out)
  cooldowns       fractions of the run: one shared stable phase, one `wsd` decay per budget
  eval            what `scaling eval` scores after training: `suites`, `n`, `batch`, for
                  image models `sampler`, `steps`, `guidance` (comma-separated lists), for
                  the code suite `samples`, `temperature`, `top_p`, `seed`, and
                  `checkpoints` / `checkpoint_every`: intermediate checkpoints scored too
  headline        (task, subset) plotted and tested for a transition, e.g. ("arithmetic", "+3d")
  predict_from    > 0: `scaling plot` predicts the headline's capability at every larger size
                  from the sizes with at most this many parameters (two-step prediction)
  executor        "local" (trials here, `max_parallel` at once) or "slurm" (an array job)
  max_parallel    local: trials at once, each on its own share of the devices (0, 1: one)
  cpu_device_per_core  local, on CPU: each trial sees one device per core of its share,
                  so the batch is split over the cores (faster for small models)
  slurm           the SLURM jobs' resources and waiting, see `scaling.cluster.SLURM_DEFAULTS`

Each trial is named by its config's content hash, so re-running a sweep finds finished
trials by name and skips them, and resumes interrupted ones from their checkpoints. The
sweep file is Python and runs when named on the command line (`sweep run`); what the
sweep saved (`sweep.json`, `trials.json`, `trials/*.json`) is only ever read.
"""

from __future__ import annotations

import dataclasses
import math
import os

import ml_collections

from scaling import cluster, files
from scaling import config as config_lib
from scaling.errors import ConfigError, RequestError, UserError
from scaling.evals import kinds as eval_kinds
from scaling.evals.request import EvalRequest
from scaling import families
from scaling.families import family_for, validate
from scaling.sweep import axes

EXECUTORS = ("local", "slurm")


def base_sweep() -> ml_collections.ConfigDict:
  """Every sweep field with its default: also the accepted schema."""
  return ml_collections.ConfigDict(dict(
      name="sweep", base="", sizes=(), target_params=(), seeds=(0,), overrides=(),
      size_overrides={}, tokens_per_param=0.0,
      learning_rates=(), flop_budgets=(), isoflop_min_steps=0, cooldowns=(),
      eval=dict(suites="", n=0, batch=128, sampler="", steps="", guidance="",
                samples=20, temperature=0.8, top_p=1.0, seed=0,
                checkpoints=(), checkpoint_every=0),
      headline=("arithmetic", "+3d"), predict_from=0.0,
      executor="local", max_parallel=0, cpu_device_per_core=True,
      slurm=dict(cluster.SLURM_DEFAULTS),
  ))


@dataclasses.dataclass(frozen=True)
class Trial:
  name: str           # run name: config name + content hash
  size: str
  seed: int
  cfg: ml_collections.ConfigDict
  learning_rate: float | None = None  # set when the sweep crosses a learning-rate grid
  flop_budget: float | None = None    # set in IsoFLOP sweeps
  cooldown: float | None = None       # a branch: its fraction of the longest run
  trunk: str | None = None            # a branch: the trial whose checkpoint it starts from
  branch_step: int | None = None      # ... at this step
  role: str = "trial"                 # "trunk": the shared stable phase, not in the table
  eval_steps: tuple = ()              # intermediate checkpoints scored after training

  @property
  def params(self) -> int:
    return family_for(self.cfg).params().total

  def index(self) -> dict:
    """What `trials.json` records of the trial besides its config."""
    fields = dataclasses.asdict(self)
    del fields["cfg"]
    fields["eval_steps"] = list(self.eval_steps)
    return fields


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


def _resolve_base(sweep: ml_collections.ConfigDict, spec_path: str) -> None:
  """A relative base path is taken from the working directory, else from the repository
  the sweep file lives in (configs/sweeps/x.py -> the folder above configs/)."""
  base_path, sep, base_arg = sweep.base.partition(":")
  if os.path.isabs(base_path):
    return
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(spec_path))))
  for candidate in (os.path.abspath(base_path), os.path.join(root, base_path)):
    if os.path.exists(candidate):
      with sweep.unlocked():
        sweep.base = candidate + sep + base_arg
      return


def load(spec: str, overrides=(), executor: str | None = None) -> ml_collections.ConfigDict:
  """Runs the sweep file named on the command line and checks its fields."""
  sweep = config_lib.load(spec)
  config_lib.check_fields(sweep, base_sweep(), what="sweep")
  config_lib.apply_overrides(sweep, overrides)
  with sweep.unlocked():
    sweep.executor = executor or sweep.executor
  if not sweep.base:
    raise ConfigError("sweep.base is required: the config every trial starts from")
  if sweep.executor not in EXECUTORS:
    raise ConfigError(f"sweep.executor: unknown {sweep.executor!r}; choose from "
                      f"{', '.join(EXECUTORS)}")
  if sweep.max_parallel < 0:
    raise ConfigError(f"sweep.max_parallel: must be >= 0, got {sweep.max_parallel}")
  _resolve_base(sweep, spec.partition(":")[0])
  return sweep


# The `eval` key of each eval request field that has another name there.
EVAL_KEYS = {"samplers": "sampler"}


def _named(e: RequestError) -> str:
  return e.naming(f"sweep.eval.{EVAL_KEYS.get(e.field, e.field)}")


def eval_request(sweep) -> EvalRequest:
  """The `scaling eval` request every trial gets after training."""
  e = sweep.eval
  try:
    return EvalRequest.build(suites=e.suites or None, n=e.n or None, batch=e.batch,
                             samplers=e.sampler or None, steps=e.steps or None,
                             guidance=e.guidance or None, samples=e.samples,
                             temperature=e.temperature, top_p=e.top_p, seed=e.seed)
  except RequestError as err:
    raise ConfigError(_named(err)) from None


def _steps_for_budget(cfg, tokens_per_param: float) -> int:
  family = family_for(cfg)
  if family.unit != "token":
    raise ConfigError("sweep.tokens_per_param: token budgets are for language models; "
                      "set train.steps for image models")
  return max(1, math.ceil(tokens_per_param * family.params().total / family.units_per_step()))


def trials(sweep: ml_collections.ConfigDict) -> list[Trial]:
  """Every (size, seed) of the sweep as a resolved config; nothing is trained or written."""
  sizes = tuple(sweep.sizes or ())
  targets = tuple(sweep.target_params or ())
  if bool(sizes) == bool(targets):
    raise ConfigError("sweep: give exactly one non-empty ladder, sizes or target_params")
  if not sweep.seeds:
    raise ConfigError("sweep.seeds: needs at least one seed")
  base_path, _, base_arg = sweep.base.partition(":")
  size_overrides = dict(sweep.size_overrides or {})
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
        except ConfigError as e:
          raise ConfigError(f"sweep.sizes: {size!r}: {e}") from None
      else:
        cfg = config_lib.load(sweep.base)
        config_lib.apply_overrides(cfg, [f"model.{k}={v}" for k, v in shape_for(size).items()])
        with cfg.unlocked():
          cfg.name = f"{cfg.name.rsplit('-', 1)[0]}-n{label}"
      config_lib.apply_overrides(cfg, [*sweep.overrides, *size_overrides.get(label, ()),
                                       f"seed={seed}"])
      if sweep.tokens_per_param:
        with cfg.unlocked():
          cfg.train.steps = _steps_for_budget(cfg, sweep.tokens_per_param)
      name = families.run_name(cfg)
      out.append(Trial(name, label, int(seed), cfg))
  return _axes(sweep, out)


def _axes(sweep, out: list[Trial]) -> list[Trial]:
  if sweep.learning_rates:
    out = axes.learning_rates(out, sweep.learning_rates)
  if sweep.flop_budgets:
    if sweep.tokens_per_param or sweep.cooldowns:
      raise ConfigError("sweep.flop_budgets set the steps of each trial: leave "
                        "tokens_per_param and cooldowns unset")
    out = axes.flop_budgets(out, sweep.flop_budgets, sweep.isoflop_min_steps)
  if sweep.cooldowns:
    if sweep.executor != "local":
      raise ConfigError("sweep.cooldowns: branches wait for their trunk, which only the "
                        "local executor arranges")
    out = axes.cooldowns(out, sweep.cooldowns)
  if sweep.eval.checkpoints or sweep.eval.checkpoint_every:
    out = axes.eval_checkpoints(out, sweep.eval.checkpoints, sweep.eval.checkpoint_every)
  names = [t.name for t in out]
  if len(set(names)) != len(names):
    raise ConfigError("sweep: two trials have the same config (a repeated size, seed or "
                      "grid value)")
  return out


def check(sweep, trial_list: list[Trial], devices=None, *, check_mesh: bool = True) -> None:
  """Everything the sweep will need, before anything trains: every trial's config (for
  these devices, unless the trials run on other machines) and its eval request."""
  request = eval_request(sweep)
  for t in trial_list:
    try:
      if check_mesh:
        validate(t.cfg, devices)
      family_for(t.cfg).check()
      eval_kinds.for_kind(t.cfg.model.kind).check(t.cfg, request)
    except RequestError as e:
      raise ConfigError(f"trial {t.size} seed {t.seed}: {_named(e)}") from None
    except UserError as e:
      raise ConfigError(f"trial {t.size} seed {t.seed}: {e}") from None


def sweep_dir(sweep, directory: str | None) -> str:
  return directory or os.path.join("sweeps", sweep.name)


def save(sweep, trial_list: list[Trial], layout) -> None:
  """Writes what later commands read instead of running the sweep file again."""
  os.makedirs(layout.trials, exist_ok=True)
  config_lib.save(sweep, layout.sweep)
  for t in trial_list:
    config_lib.save(t.cfg, layout.trial_config(t.name))
  files.write_json(layout.index, [t.index() for t in trial_list])


def load_saved(layout):
  """The sweep and its trials as saved in a sweep directory: JSON only, no code runs."""
  if not os.path.exists(layout.sweep):
    raise UserError(f"{layout.path} is not a sweep directory (no sweep.json)")
  sweep = config_lib.from_json(layout.sweep)
  config_lib.check_fields(sweep, base_sweep(), what="sweep")
  index = files.read_json(layout.index, default=[])
  if not index:
    raise UserError(f"{layout.path} has no trials.json: run the sweep again with "
                    "`scaling sweep run --config=...`")
  out = []
  for entry in index:
    fields = {**entry, "eval_steps": tuple(entry.get("eval_steps", ()))}
    out.append(Trial(**fields, cfg=config_lib.from_json(layout.trial_config(entry["name"]))))
  return sweep, out
