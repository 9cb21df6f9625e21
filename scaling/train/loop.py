"""The training loop: data, sharded state, jitted step, evals, checkpoints, preemption.

`train(cfg, workdir)` returns the process exit code (`scaling.exits`): OK when the run
completed, PREEMPTED after SIGTERM and INTERRUPTED after Ctrl-C (either way a checkpoint
was saved; run again to resume), DIVERGED when the loss became non-finite. Running again
in the same directory resumes from the newest readable checkpoint, with the data iterator
where it was; the records (`metrics.jsonl`, `summary.json`) then equal an uninterrupted
run's.

The host stays a step ahead of the device: a logged step's metrics are read after the
next step has been dispatched, so logging never waits for the device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from tqdm import tqdm

from scaling import config as config_lib
from scaling import exits, files, hardware, optim
from scaling import mesh as mesh_lib
from scaling.errors import ConfigError, UserError
from scaling.numbers import fmt
from scaling.data import pipeline
from scaling import families
from scaling.families import family_for, validate
from scaling.rundir import RunDir
from scaling.train import norms, programs, summary
from scaling.train.checkpoint import Checkpointer
from scaling.train.metric_writer import MetricWriter
from scaling.train.profile import StepProfiler
from scaling.train.state import StateSpec, TrainState


def ema_update(ema, params, step: jax.Array, decay: float):
  """One EMA step; the decay ramps up from 0 so early averages are not stuck at init."""
  rate = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
  return jax.tree.map(lambda e, p: rate * e + (1.0 - rate) * p, ema, params)


def make_train_step(spec: StateSpec, family, tx, batch_sharding):
  """`train_step(state, batch, key, record) -> (state, metrics)`, jitted; the state's
  buffers are donated. The batch's are not: XLA reuses a donated buffer only as an output
  of the same shape, which no batch array has, so JAX would keep it (and warn) all the same.

  Randomness (noise levels, label dropout) comes from `fold_in(key, step)`, so a resumed
  run draws exactly what the uninterrupted one would have. The key is an argument, not a
  constant, so trials that differ only in their seed compile the same program. With
  `train.norms`, the metrics of a step whose `record` (a boolean array) is true hold each
  layer group's parameter and update norms (zeros otherwise: dozens of small reductions
  cost the smallest models ~30% of a step, so only steps that are written pay for them).
  """
  lr_schedule = optim.schedule(family.cfg.train)
  ema_decay = family.ema_decay
  groups = norms.LayerGroups.of(spec.abstract.params) if family.cfg.train.norms else None

  def train_step(state: TrainState, batch, key, record):
    key = jax.random.fold_in(key, state.step)
    params, opt_state, metrics = family.update(spec.model, tx, state.params,
                                               state.opt_state, batch, key)
    ema = state.ema if ema_decay is None else ema_update(state.ema, params, state.step,
                                                        ema_decay)
    metrics = {**metrics, "learning_rate": lr_schedule(state.step)}
    if groups is not None:
      def layer_norms(new, old):
        return {**groups.norms("param_norm", new),
                **groups.norms("update_norm", jax.tree.map(jnp.subtract, new, old))}
      zeros = lambda new, old: jax.tree.map(jnp.zeros_like, layer_norms(new, old))
      metrics.update(jax.lax.cond(record, layer_norms, zeros, params, state.params))
    return TrainState(state.step + 1, params, opt_state, ema), metrics

  # Metrics replicated, so every process can read them.
  replicated = jax.sharding.NamedSharding(batch_sharding.mesh, jax.sharding.PartitionSpec())
  return jax.jit(train_step,
                 in_shardings=(spec.shardings, batch_sharding, replicated, replicated),
                 out_shardings=(spec.shardings, replicated), donate_argnums=0)


def make_eval_step(spec: StateSpec, family, mesh: jax.sharding.Mesh):
  def eval_fn(params, batch, key):
    return family.eval_sums(spec.model(params), batch, key)
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  return jax.jit(eval_fn, out_shardings=replicated)


def evaluate(eval_fn, family, params, batches, sharding, seed: int) -> dict[str, float]:
  """The family's held-out metrics, summed over batches; batch `i` draws from key `i`."""
  totals: dict[str, float] = {}
  base = jax.random.key(seed)
  for i, batch in enumerate(batches):
    sums = eval_fn(params, pipeline.to_global(batch, sharding, jax.process_count()),
                   jax.random.fold_in(base, i))
    for k, v in jax.device_get(sums).items():
      totals[k] = totals.get(k, 0.0) + float(v)
  return family.eval_metrics(totals)


class Preemption:
  """Turns SIGTERM (preemption) and SIGINT (Ctrl-C) into a stop between steps; restores
  the previous handlers on exit. `status` says which stopped the run.

  One process checks its flag every step. Several processes must stop at the same step,
  so they agree (an all-gather) only every `sync_every` steps rather than on every one;
  an interruption outranks a preemption, so all of them end with the same status. After
  the first Ctrl-C the next one gets the default handler: it ends the process at once,
  even inside a long compilation, and the newest committed checkpoint stays good.
  """

  STATUSES = (None, "preempted", "interrupted")  # agreed on by their index: the largest

  def __init__(self, sync_every: int):
    self.sync_every = max(1, sync_every)
    self.reason: str | None = None
    self._previous = {}

  @property
  def requested(self) -> bool:
    return self.reason is not None

  @property
  def status(self) -> str:
    """The status of a run this stopped: `interrupted` (Ctrl-C) or `preempted`."""
    return self.reason or "preempted"

  def __enter__(self) -> "Preemption":
    self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM,
                                                                   signal.SIGINT)}
    return self

  def __exit__(self, *exc) -> None:
    for s, handler in self._previous.items():
      signal.signal(s, handler)

  def _handle(self, signum, frame):
    del frame
    if signum == signal.SIGINT:
      self.reason = "interrupted"
      signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C ends the process
    elif self.reason is None:
      self.reason = "preempted"

  def should_stop(self, step: int) -> bool:
    if jax.process_count() == 1:
      return self.requested
    if step % self.sync_every:
      return False
    mine = np.array(self.STATUSES.index(self.reason))
    agreed = int(multihost_utils.process_allgather(mine).max())
    self.reason = self.STATUSES[agreed] or self.reason
    return agreed > 0


@dataclasses.dataclass
class Progress:
  """Where the run is: the last step trained and the last metrics logged."""
  step: int = 0
  start_step: int | None = None  # where this session began, once its state is restored
  last: dict = dataclasses.field(default_factory=dict)
  first_step_s: float | None = None  # from the start of `train` to the first step's end


def _prepare_workdir(cfg, run_dir: RunDir) -> None:
  """Refuses a directory that holds a different run; writes nothing before that check."""
  if os.path.exists(run_dir.config):
    saved = families.config_hash(config_lib.from_json(run_dir.config))
    if saved != families.config_hash(cfg):
      raise ConfigError(f"{run_dir.path} holds a run with a different config (hash {saved}); "
                        "use a new --workdir")


def _finished_step(cfg, run_dir: RunDir) -> int | None:
  """The step a completed run in `run_dir` ended at, None unless it completed all of
  `cfg`'s steps and its final checkpoint is there (its config was checked to be `cfg`'s
  already). A run whose last checkpoint was lost resumes from the one before."""
  try:
    record = files.read_json(run_dir.summary, default={})
  except UserError:  # a damaged summary: the run resumes and writes it again
    return None
  step = record.get("step")
  done = record.get("status") == "completed" and isinstance(step, int)
  saved = done and os.path.isdir(os.path.join(run_dir.checkpoints, str(step)))
  return step if saved and step >= cfg.train.steps else None


def _load_data(family):
  """Process 0 prepares the data (and tokenizer, caches); the others then read them."""
  lead = jax.process_index() == 0
  data = None
  for turn in ("lead", "others"):
    if lead == (turn == "lead"):
      data = family.load_data()
    multihost_utils.sync_global_devices(f"data prepared: {turn}")
  return data


def train(cfg, workdir: str, devices=None, profile_steps: tuple[int, int] | None = None
          ) -> int:
  """Trains (or resumes) the run described by `cfg` in `workdir`; returns an exit code.

  `devices` defaults to all devices; the mesh must use exactly these. `profile_steps`
  (START, END) traces those steps into `workdir/profile` (`scaling.train.profile`).
  """
  started = time.time()
  progress = Progress()
  mesh = validate(cfg, devices)
  family = family_for(cfg)
  run_dir = RunDir(workdir)
  files.check_writable(run_dir.config, "the run directory")
  _prepare_workdir(cfg, run_dir)
  if (finished := _finished_step(cfg, run_dir)) is not None:  # touch nothing
    if jax.process_index() == 0:
      print(f"run already finished at step {finished} ({os.path.basename(run_dir.summary)}); "
            "nothing to do", file=sys.stderr, flush=True)
    return exits.OK
  data = _load_data(family)
  lead = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)
  if lead:
    config_lib.save(cfg, run_dir.config)
    family.save_artifacts(data, workdir)
  record = summary.Summary(run_dir.summary, cfg, family.params(), family.flops_per_unit(),
                           family.units_per_step(), unit=family.unit, enabled=lead,
                           mesh=mesh)
  try:
    status = _run(cfg, family, data, mesh, run_dir, progress, started, profile_steps)
  except Exception as e:  # Recorded for the sweep's table, then raised as usual.
    try:
      record.write(status="failed", step=progress.step, last=progress.last,
                   wall_time_s=time.time() - started, error=f"{type(e).__name__}: {e}",
                   start_step=progress.start_step)
    except OSError:  # the disk that failed the run may refuse the record too
      pass
    raise
  record.write(status=status, step=progress.step, last=progress.last,
               wall_time_s=time.time() - started, first_step_s=progress.first_step_s,
               start_step=progress.start_step)
  if status in ("preempted", "interrupted") and lead:
    print(f"{status} at step {progress.step}; checkpoint saved; run the same command to "
          "continue", file=sys.stderr, flush=True)
  return exits.FOR_STATUS[status]


def _programs(family, mesh, rules) -> programs.Programs:
  tx = family.optimizer()
  spec = StateSpec(family.make_model, tx, mesh, ema=family.ema_decay is not None)
  # Batches are split along their leading axis only, so one sharding fits every leaf.
  batch_sharding = mesh_lib.batch_sharding(mesh, rules, ndim=1)
  return programs.Programs(spec, batch_sharding,
                           make_train_step(spec, family, tx, batch_sharding),
                           make_eval_step(spec, family, mesh))


def _run(cfg, family, data, mesh, run_dir: RunDir, progress: Progress,
         started: float, profile_steps: tuple[int, int] | None) -> str:
  """The step loop inside everything it opens; returns the run's status."""
  rules = mesh_lib.complete_rules(cfg.mesh.rules)
  lead = jax.process_index() == 0
  with contextlib.ExitStack() as stack:
    stack.enter_context(mesh_lib.activate(mesh, rules))
    compiled = programs.for_run(cfg, mesh, rules, lambda: _programs(family, mesh, rules))
    spec = compiled.spec
    preemption = stack.enter_context(Preemption(cfg.checkpoint.preemption_check_every))
    checkpointer = stack.enter_context(Checkpointer(
        run_dir.checkpoints, cfg.checkpoint, unreadable_dir=run_dir.unreadable_checkpoints))
    data_iter = iter(family.train_dataset(data, jax.process_index(), jax.process_count()))
    restored = checkpointer.restore_latest(spec.abstract, data_iter)
    step, state = restored if restored else (0, spec.init(cfg.seed))
    writer = stack.enter_context(MetricWriter(run_dir.metrics, run_dir.tensorboard,
                                              resume_step=step, enabled=lead))
    progress.step, progress.start_step, progress.last = step, step, writer.last()
    profiler = stack.enter_context(StepProfiler(profile_steps, run_dir.profile))
    loop = _Loop(cfg, family, data, compiled, checkpointer, writer, progress, started,
                 profiler)
    bar = stack.enter_context(tqdm(total=cfg.train.steps, initial=step, disable=not lead,
                                   unit="step", dynamic_ncols=True, mininterval=1.0))
    status = loop.run(state, data_iter, preemption, bar,
                      saved_step=step if restored else None)
    checkpointer.wait()
  return status


class _Loop:
  """One training session from a given state: step, log a step late, eval, checkpoint."""

  def __init__(self, cfg, family, data, compiled: programs.Programs, checkpointer, writer,
               progress, started, profiler):
    self.cfg, self.family, self.data = cfg, family, data
    self.profiler = profiler
    self.checkpointer, self.writer, self.progress = checkpointer, writer, progress
    self.batch_sharding = compiled.batch_sharding
    self.train_step, self.eval_step = compiled.train_step, compiled.eval_step
    self.key = jax.random.key(cfg.seed)
    self.peak, _ = hardware.peak_flops()
    self.pending = None  # (step, metrics on device, eval results) not yet written
    self.clock = None    # (time, step) of the last written record
    self.started = started

  def run(self, state, data_iter, preemption, bar, saved_step) -> str:
    steps = self.cfg.train.steps
    step = self.progress.step
    while step < steps:
      if preemption.should_stop(step):
        if not self._flush():
          return "diverged"
        if saved_step != step:  # A stop right after a periodic save finds it saved.
          self.checkpointer.save(step, state, data_iter, force=True)
        return preemption.status
      self.profiler.at(step, state)
      batch = pipeline.to_global(next(data_iter), self.batch_sharding, jax.process_count())
      record = self._records(step + 1)
      with jax.profiler.StepTraceAnnotation("train", step_num=step):
        state, metrics = self.train_step(state, batch, self.key, np.bool_(record))
      step += 1
      self.progress.step = step
      bar.update(1)
      if self.clock is None:  # The first step compiles; time from its end.
        jax.block_until_ready(metrics)
        self.clock = (time.perf_counter(), step)
        self.progress.first_step_s = time.time() - self.started
      if not self._flush():  # the previous logged step, now that this one is queued
        return "diverged"
      if record:
        self.pending = (step, metrics, self._evaluate(state) if self._eval_due(step) else {})
      if self.checkpointer.due(step) or step == steps:
        if not self._flush():  # every record up to a checkpoint is written before it
          return "diverged"
        self.checkpointer.save(step, state, data_iter)
        saved_step = step
      bar.set_postfix(loss=fmt(self.progress.last.get("loss")), refresh=False)  # `-`: none yet
    self.profiler.at(step, state)
    return "completed" if self._flush() else "diverged"

  def _eval_due(self, step: int) -> bool:
    every = self.cfg.eval.every_steps
    # Kept checkpoints (scored later, or branched from) get their held-out loss too.
    return bool((every and step % every == 0) or step == self.cfg.train.steps
                or step in self.checkpointer.keep_steps)

  def _records(self, step: int) -> bool:
    """Whether `step`'s metrics are written: logged, evaluated, kept or the last."""
    return step % self.cfg.train.log_every == 0 or self._eval_due(step)

  def _evaluate(self, state) -> dict:
    # The queued train steps finish first, so their time is not taken for the eval's.
    jax.block_until_ready(state)
    started = time.perf_counter()
    batches = self.family.eval_batches(self.data, jax.process_index(), jax.process_count())
    # Evaluate the weights that sampling uses: the EMA where one is kept.
    params = state.params if state.ema is None else state.ema
    out = evaluate(self.eval_step, self.family, params, batches, self.batch_sharding,
                   self.cfg.seed + 1)
    # Throughput is of training: the eval's time does not count.
    self.clock = (self.clock[0] + time.perf_counter() - started, self.clock[1])
    return out

  def _flush(self) -> bool:
    """Writes the pending record; False when its loss is not finite (diverged)."""
    if self.pending is None:
      return True
    step, metrics, evals = self.pending
    self.pending = None
    last = {k: float(v) for k, v in jax.device_get(metrics).items()}
    if not np.isfinite(last["loss"]):
      self.progress.step, self.progress.last = step, last
      self.writer.write(step, last)
      return False
    now, since = time.perf_counter(), self.clock[1]
    if step > since:
      per_s = (step - since) * self.family.units_per_step() / (now - self.clock[0])
      last.update({f"{self.family.unit}s_per_second": per_s,
                   "step_time_s": (now - self.clock[0]) / (step - since),
                   "mfu": self.family.flops_per_unit() * per_s / self.peak})
    self.clock = (now, step)
    last.update(evals)
    self.progress.last = last
    self.writer.write(step, last)
    return True
