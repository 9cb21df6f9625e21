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
import numpy as np
import optax
from jax.experimental import multihost_utils
from tqdm import tqdm

from scaling import config as config_lib
from scaling import hardware
from scaling import mesh as mesh_lib
from scaling.config import ConfigError
from scaling.data import builders, pipeline
from scaling.models import counting
from scaling.train import objectives, optim, summary
from scaling.train.checkpoint import Checkpointer
from scaling.train.metrics import MetricWriter
from scaling.train.state import StateFactory, TrainState
from scaling.train.validate import validate

EXIT_OK, EXIT_ERROR, EXIT_DIVERGED, EXIT_PREEMPTED = 0, 1, 3, 75


def make_train_step(factory: StateFactory, tx, lr_schedule, batch_sharding):
  """One jitted optimisation step; the incoming state's buffers are donated."""

  def step_fn(state: TrainState, batch):
    def loss_fn(params):
      logits_BLV = factory.model(params)(batch["inputs"])
      return objectives.lm_loss(logits_BLV, batch["targets"], batch["loss_mask"])

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads),
               "learning_rate": lr_schedule(state.step)}
    return TrainState(state.step + 1, params, opt_state), metrics

  batch_shardings = {k: batch_sharding for k in ("inputs", "targets", "loss_mask")}
  # Metrics replicated, so every process can read them.
  replicated = jax.sharding.NamedSharding(batch_sharding.mesh, jax.sharding.PartitionSpec())
  return jax.jit(step_fn, in_shardings=(factory.shardings, batch_shardings),
                 out_shardings=(factory.shardings, replicated), donate_argnums=0)


def make_eval_step(factory: StateFactory, mesh: jax.sharding.Mesh):
  def eval_fn(params, batch):
    logits_BLV = factory.model(params)(batch["inputs"])
    return objectives.lm_eval_sums(logits_BLV, batch["targets"], batch["loss_mask"])
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  return jax.jit(eval_fn, out_shardings=replicated)


def evaluate(eval_fn, params, batches, sharding) -> dict[str, float]:
  """Teacher-forced loss, token accuracy and exact match over the held-out split."""
  totals: dict[str, float] = {}
  for batch in batches:
    sums = eval_fn(params, pipeline.to_global(batch, sharding, jax.process_count()))
    for k, v in jax.device_get(sums).items():
      totals[k] = totals.get(k, 0.0) + float(v)
  return {
      "eval_loss": totals["nll"] / max(totals["tokens"], 1),
      "eval_token_accuracy": totals["correct_tokens"] / max(totals["tokens"], 1),
      "eval_exact_match": totals["exact"] / max(totals["examples"], 1),
      "eval_examples": totals["examples"],
  }


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

  # Process 0 writes the dataset, its tokenizer and token cache; the others then read them.
  splits = {}
  for turn in ("lead", "others"):
    if lead == (turn == "lead"):
      prepared = builders.prepare(cfg.data, cfg.data.data_dir or None)
      for split in ("train", "eval"):
        splits[split] = pipeline.load_split(prepared, split, cfg.data.seq_len, cfg.data.loss_on)
    multihost_utils.sync_global_devices(f"data prepared: {turn}")

  os.makedirs(workdir, exist_ok=True)
  if lead:
    config_lib.save(cfg, os.path.join(workdir, "config.json"))
    prepared.tokenizer.save(os.path.join(workdir, "tokenizer.model"))

  batch_sharding = mesh_lib.batch_sharding(mesh, rules)
  tx = optim.optimizer(cfg.train)
  lr_schedule = optim.schedule(cfg.train)
  vocab = cfg.data.vocab_size
  flops_per_token = counting.lm_flops_per_token(cfg.model, vocab, cfg.data.seq_len)
  tokens_per_step = cfg.train.batch_size * cfg.data.seq_len
  peak, _ = hardware.peak_flops()
  writer = MetricWriter(workdir, enabled=lead)
  checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), cfg.checkpoint)
  preemption = _Preemption()
  record = summary.Summary(workdir, cfg, counting.lm_params(cfg.model, vocab),
                           flops_per_token, tokens_per_step, enabled=lead)

  step, last = 0, {}
  try:
    with mesh_lib.activate(mesh, rules):
      factory = StateFactory(cfg.model, vocab, cfg.seed, tx, mesh)
      data_iter = iter(pipeline.train_dataset(
          splits["train"], global_batch=cfg.train.batch_size, seed=cfg.data.seed,
          process_index=jax.process_index(), process_count=jax.process_count()))
      latest = checkpointer.latest_step()
      if latest is not None:
        state = checkpointer.restore(latest, factory.abstract, data_iter)
        writer.truncate_after(latest)
      else:
        state = factory.init()
      train_step = make_train_step(factory, tx, lr_schedule, batch_sharding)
      eval_fn = make_eval_step(factory, mesh)

      def run_eval(params):
        batches = pipeline.eval_batches(
            splits["eval"], global_batch=cfg.eval.batch_size,
            max_examples=cfg.eval.max_examples, process_index=jax.process_index(),
            process_count=jax.process_count())
        return evaluate(eval_fn, params, batches, batch_sharding)

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
              tokens_per_s = interval_steps * tokens_per_step / elapsed
              last.update(tokens_per_second=tokens_per_s, step_time_s=elapsed / interval_steps,
                          mfu=flops_per_token * tokens_per_s / peak)
            interval_start, interval_steps = time.perf_counter(), 0
            every = cfg.eval.every_steps
            if (every and step % every == 0) or step == cfg.train.steps:
              last.update(run_eval(state.params))
            writer.write(step, last)
            bar.set_postfix(loss=f"{last['loss']:.4f}",
                            tok_s=f"{last.get('tokens_per_second', 0):.0f}", refresh=False)
          if checkpointer.due(step) or step == cfg.train.steps:
            checkpointer.save(step, state, data_iter)
        if status == "preempted":
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

