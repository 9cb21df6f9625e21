"""The training loop: data, sharded state, jitted step, evals, checkpoints, preemption.

`train(cfg, workdir)` returns the process exit code: EXIT_OK when the run completed,
EXIT_PREEMPTED after SIGTERM (a checkpoint was saved; requeue to resume), EXIT_DIVERGED
when the loss became non-finite. Re-running in the same directory resumes from the latest
checkpoint, with the data iterator where it was.
"""

from __future__ import annotations

import os
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from tqdm import tqdm

from scaling import config as config_lib
from scaling import hardware
from scaling import mesh as mesh_lib
from scaling.config import ConfigError
from scaling.data import pipeline
from scaling.train import optim, summary
from scaling.train.checkpoint import Checkpointer
from scaling.families import family_for
from scaling.train.metrics import MetricWriter
from scaling.train.state import StateFactory, TrainState
from scaling.train.validate import validate

EXIT_OK, EXIT_ERROR, EXIT_DIVERGED, EXIT_PREEMPTED = 0, 1, 3, 75


def ema_update(ema, params, step: jax.Array, decay: float):
  """One EMA step; the decay ramps up from 0 so early averages are not stuck at init."""
  rate = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
  return jax.tree.map(lambda e, p: rate * e + (1.0 - rate) * p, ema, params)


def make_train_step(factory: StateFactory, family, tx, lr_schedule, batch_sharding, *,
                    seed: int = 0, ema_decay: float | None = None):
  """One jitted optimisation step; the incoming state's buffers are donated.

  Randomness (noise levels, label dropout) comes from the seed and the step alone, so a
  resumed run draws exactly what the uninterrupted one would have.
  """

  def step_fn(state: TrainState, batch):
    key = jax.random.fold_in(jax.random.key(seed), state.step)

    def loss_fn(params):
      return family.loss(factory.model(params), batch, key)

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema = state.ema if ema_decay is None else ema_update(state.ema, params, state.step,
                                                        ema_decay)
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads),
               "learning_rate": lr_schedule(state.step)}
    return TrainState(state.step + 1, params, opt_state, ema), metrics

  # Metrics replicated, so every process can read them.
  replicated = jax.sharding.NamedSharding(batch_sharding.mesh, jax.sharding.PartitionSpec())
  return jax.jit(step_fn, in_shardings=(factory.shardings, batch_sharding),
                 out_shardings=(factory.shardings, replicated), donate_argnums=0)


def make_eval_step(factory: StateFactory, family, mesh: jax.sharding.Mesh):
  def eval_fn(params, batch, key):
    return family.eval_sums(factory.model(params), batch, key)
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


class _Preemption:
  """Turns SIGTERM into a flag the loop checks between steps."""

  def __init__(self):
    self.requested = False
    self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def agreed(self) -> bool:
    """True on every process once any process got SIGTERM (they must stop together)."""
    if jax.process_count() == 1:
      return self.requested
    return bool(multihost_utils.process_allgather(np.array(self.requested)).any())

  def restore(self):
    signal.signal(signal.SIGTERM, self._previous)


def _prepare_workdir(cfg, workdir: str) -> None:
  """Refuses a directory that holds a different run; writes nothing before that check."""
  path = os.path.join(workdir, "config.json")
  if os.path.exists(path):
    saved = config_lib.config_hash(config_lib.from_json(path))
    if saved != config_lib.config_hash(cfg):
      raise ConfigError(f"{workdir} holds a run with a different config (hash {saved}); "
                        "use a new --workdir")


def train(cfg, workdir: str, devices=None) -> int:
  """Trains (or resumes) the run described by `cfg` in `workdir`; returns an exit code.

  `devices` defaults to all devices; the mesh must use exactly these.
  """
  start_time = time.time()
  mesh = validate(cfg, devices)
  rules = mesh_lib.complete_rules(cfg.mesh.rules)
  _prepare_workdir(cfg, workdir)
  lead = jax.process_index() == 0
  family = family_for(cfg)

  # Process 0 writes the dataset (and tokenizer, caches); the others then read them.
  data = None
  for turn in ("lead", "others"):
    if lead == (turn == "lead"):
      data = family.load_data()
    multihost_utils.sync_global_devices(f"data prepared: {turn}")

  os.makedirs(workdir, exist_ok=True)
  if lead:
    config_lib.save(cfg, os.path.join(workdir, "config.json"))
    family.save_artifacts(data, workdir)

  batch_sharding = family.batch_sharding(mesh, rules)
  tx = optim.optimizer(cfg.train)
  lr_schedule = optim.schedule(cfg.train)
  flops_per_unit = family.flops_per_unit()
  units_per_step = family.units_per_step()
  unit = family.unit
  peak, _ = hardware.peak_flops()
  writer = MetricWriter(workdir, enabled=lead)
  checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), cfg.checkpoint)
  preemption = _Preemption()
  record = summary.Summary(workdir, cfg, family.params(), flops_per_unit, units_per_step,
                           unit=unit, enabled=lead)
  ema_decay = family.ema_decay

  step, last = 0, {}
  try:
    with mesh_lib.activate(mesh, rules):
      factory = StateFactory(family.make_model, tx, mesh, ema=ema_decay is not None)
      data_iter = iter(family.train_dataset(data, jax.process_index(), jax.process_count()))
      latest = saved_step = checkpointer.latest_step()
      if latest is not None:
        state = checkpointer.restore(latest, factory.abstract, data_iter)
        writer.truncate_after(latest)
      else:
        state = factory.init()
      train_step = make_train_step(factory, family, tx, lr_schedule, batch_sharding,
                                   seed=cfg.seed, ema_decay=ema_decay)
      eval_fn = make_eval_step(factory, family, mesh)

      def run_eval(state):
        batches = family.eval_batches(data, jax.process_index(), jax.process_count())
        # Evaluate the weights that sampling uses: the EMA where one is kept.
        params = state.params if state.ema is None else state.ema
        return evaluate(eval_fn, family, params, batches, batch_sharding, cfg.seed + 1)

      step = int(jax.device_get(state.step))
      status = "completed"
      bar = tqdm(total=cfg.train.steps, initial=step, disable=not lead, unit="step",
                 dynamic_ncols=True, mininterval=1.0)
      interval_start, interval_steps = None, 0
      try:
        while step < cfg.train.steps:
          if preemption.agreed():
            status = "preempted"
            break
          batch = pipeline.to_global(next(data_iter), batch_sharding, jax.process_count())
          state, metrics = train_step(state, batch)
          step += 1
          interval_steps += 1
          bar.update(1)
          if interval_start is None:  # The first step compiles; time from its end.
            jax.block_until_ready(metrics)
            interval_start, interval_steps = time.perf_counter(), 0
          if step % cfg.train.log_every == 0 or step == cfg.train.steps:
            last = {k: float(v) for k, v in jax.device_get(metrics).items()}
            if not np.isfinite(last["loss"]):
              writer.write(step, last)
              status = "diverged"
              break
            elapsed = time.perf_counter() - interval_start
            if interval_steps:
              per_s = interval_steps * units_per_step / elapsed
              last.update({f"{unit}s_per_second": per_s, "step_time_s": elapsed / interval_steps,
                           "mfu": flops_per_unit * per_s / peak})
            interval_start, interval_steps = time.perf_counter(), 0
            every = cfg.eval.every_steps
            if (every and step % every == 0) or step == cfg.train.steps:
              last.update(run_eval(state))
            writer.write(step, last)
            bar.set_postfix(loss=f"{last['loss']:.4f}",
                            per_s=f"{last.get(f'{unit}s_per_second', 0):.0f}", refresh=False)
          if checkpointer.due(step) or step == cfg.train.steps:
            checkpointer.save(step, state, data_iter)
            saved_step = step
        # A SIGTERM right after a periodic save finds this step saved already.
        if status == "preempted" and saved_step != step:
          checkpointer.save(step, state, data_iter, force=True)
        checkpointer.wait()
      finally:
        bar.close()
        preemption.restore()
        checkpointer.close()
        writer.close()
  except Exception as e:  # Recorded for the sweep's table, then raised as usual.
    record.write(status="failed", step=step, last=last, wall_time_s=time.time() - start_time,
                 error=f"{type(e).__name__}: {e}")
    raise

  record.write(status=status, step=step, last=last, wall_time_s=time.time() - start_time)
  return {"completed": EXIT_OK, "preempted": EXIT_PREEMPTED, "diverged": EXIT_DIVERGED}[status]

