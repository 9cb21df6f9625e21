"""Orbax checkpoints of the train state together with the grain iterator's position.

Every process takes part in saving and restoring: orbax writes the array shards each
process owns, and grain writes one small JSON file of iterator state per process.

Neither the device count nor the process count is part of a checkpoint's identity. Orbax
restores the arrays onto whatever shardings the resuming run asks for, and the iterator
position is the same in every process's file (the number of global batches read:
`scaling.data.pipeline` strides the global order over processes), so a run resumes with
any layout; the files are read here rather than by grain, whose reader insists on the
writer's process count.

A checkpoint that cannot be restored (truncated by a full disk, damaged by hand) is
reported by step and skipped for the newest one that can; training moves it aside to
`checkpoints.unreadable/` (it is never deleted), so the run can save that step again.

A checkpoint that cannot be written (a full disk, a quota, a read-only file system) stops
the run with `WriteFailed`, one line naming the step, the cause and the newest complete
checkpoint, which stays as it was. Orbax writes in background threads and reports such a
failure at the next save or wait, which is where it is caught.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from typing import Any, Callable

import grain
import jax
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy

from scaling.errors import UserError, os_failure

log = logging.getLogger("scaling")


class Unreadable(UserError):
  """No checkpoint of the run could be restored (each was reported)."""


class WriteFailed(UserError):
  """A checkpoint could not be written for a reason outside the program (disk, quota)."""


class LayoutMismatch(UserError):
  """A checkpoint this run cannot take up with its layout, though its bytes are fine."""


DATA_ITEM = "data"


def _reason(e: Exception) -> str:
  """The first line of an error, without TensorStore's pointer to its details."""
  text = str(e).strip().splitlines()
  if not text:
    return type(e).__name__
  first = text[0].split(" See full TensorStore details")[0].rstrip(". ")
  return f"{type(e).__name__}: {first[:200]}"


def _save_whole_replicas_on_cpu() -> None:
  """On CPU, each replicated array is written by its first replica, not in slices.

  Orbax splits the writing of a replicated array among its replicas by default: one
  compiled slice per array and shape, which on (simulated) CPU devices that share one
  host's memory costs compile time (a second per save of a small model) and saves nothing.
  """
  if jax.default_backend() == "cpu":
    ocp.type_handlers.register_type_handler(
        jax.Array, ocp.type_handlers.ArrayHandler(use_replica_parallel=False), override=True)


class Checkpointer:
  """Saves every `every_steps` steps and at `keep_steps` (asynchronously); keeps the last
  `max_to_keep` and every one of `keep_steps`."""

  def __init__(self, directory: str, ckpt_cfg, *, read_only: bool = False,
               unreadable_dir: str | None = None):
    self.directory = os.path.abspath(directory)
    self.every_steps = ckpt_cfg.every_steps
    self.keep_steps = frozenset(int(s) for s in ckpt_cfg.get("keep_steps", ()))
    self.unreadable_dir = unreadable_dir
    _save_whole_replicas_on_cpu()
    policies = [preservation_policy.LatestN(ckpt_cfg.max_to_keep)]
    if self.keep_steps:
      policies.append(preservation_policy.CustomSteps(sorted(self.keep_steps)))
    options = ocp.CheckpointManagerOptions(
        preservation_policy=preservation_policy.AnyPreservationPolicy(policies),
        enable_async_checkpointing=ckpt_cfg.async_save and not read_only,
        create=not read_only, read_only=read_only,
        # What a failed write left half-written (a full disk) is removed on the next start.
        cleanup_tmp_directories=not read_only)
    self.manager = ocp.CheckpointManager(self.directory, options=options,
                                         item_names=("state", DATA_ITEM))
    self._writing: int | None = None  # the step of a save that may still be in flight

  def __enter__(self) -> "Checkpointer":
    return self

  def __exit__(self, exc_type, exc, tb) -> None:
    if exc_type is None:
      self.close()
      return
    try:  # an error is on its way already: a failing close would only hide it
      self.close()
    except Exception as e:
      log.debug("closing the checkpoints after an error: %s", _reason(e))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def due(self, step: int) -> bool:
    return (self.every_steps > 0 and step % self.every_steps == 0) or step in self.keep_steps

  def save(self, step: int, state, data_iter: grain.DatasetIterator, *,
           force: bool = False) -> bool:
    self.wait()  # what orbax does first anyway; a failure is then the earlier save's
    with self._write_failures(step):
      self._writing = step
      saved = self.manager.save(
          step,
          args=ocp.args.Composite(**{"state": ocp.args.StandardSave(state),
                                     DATA_ITEM: grain.checkpoint.CheckpointSave(data_iter)}),
          force=force)
    return saved

  @contextlib.contextmanager
  def _write_failures(self, step: int | None):
    """Turns a write the OS refused into `WriteFailed`; other errors pass unchanged."""
    try:
      yield
    except Exception as e:
      reason = os_failure(e)
      if reason is None:
        raise
      self._writing = None
      kept = self._complete_steps()
      newest = (f"the newest complete checkpoint, step {kept[-1]}, is intact" if kept else
                "no checkpoint was completed before it")
      what = "a checkpoint" if step is None else f"checkpoint {step}"
      raise WriteFailed(f"{what} could not be written to {self.directory}: {reason}; "
                        f"{newest}; fix that and run the same command to continue") from None

  def _complete_steps(self) -> list[int]:
    """Steps whose checkpoint folder was committed (has its final name), from the disk."""
    try:
      names = os.listdir(self.directory)
    except OSError:
      return []
    return sorted(int(n) for n in names if n.isdigit())

  def _restore_newest(self, restore: Callable[[int], Any], steps: list[int] | None = None):
    """(step, restored) of the newest step `restore` can read, or None without steps.

    Each unreadable one is reported and, where this checkpointer may, moved aside.
    """
    steps = sorted(self.manager.all_steps() if steps is None else steps, reverse=True)
    failed = []
    for step in steps:
      try:
        return step, restore(step)
      except LayoutMismatch:  # its bytes are fine: it is not set aside
        raise
      except Exception as e:  # orbax and tensorstore report damage in many ways
        failed.append(step)
        log.warning("checkpoint %d in %s is unreadable (%s); trying an older one", step,
                    self.directory, _reason(e))
        self._move_aside(step)
    if failed:
      raise Unreadable(f"no readable checkpoint in {self.directory} (unreadable: "
                       f"{', '.join(map(str, failed))})")
    return None

  def _move_aside(self, step: int) -> None:
    if self.unreadable_dir is None:
      return
    os.makedirs(self.unreadable_dir, exist_ok=True)
    target = os.path.join(self.unreadable_dir, str(step))
    suffix = 1
    while os.path.exists(target):
      target, suffix = os.path.join(self.unreadable_dir, f"{step}.{suffix}"), suffix + 1
    shutil.move(os.path.join(self.directory, str(step)), target)
    self.manager.reload()
    log.warning("moved checkpoint %d to %s", step, target)

  def data_position(self, step: int) -> dict:
    """The iterator state saved with `step`, whatever number of processes wrote it."""
    folder = os.path.join(self.directory, str(step), DATA_ITEM)
    names = sorted(n for n in os.listdir(folder) if n.startswith("process_"))
    if not names:
      raise FileNotFoundError(f"{folder} holds no iterator state")
    states = {}
    for name in names:
      with open(os.path.join(folder, name), encoding="utf-8") as f:
        states[name] = json.load(f)
    own = f"process_{jax.process_index()}-of-{jax.process_count()}.json"
    if len({json.dumps(v, sort_keys=True) for v in states.values()}) == 1:
      return next(iter(states.values()))
    if own in states and len(states) == jax.process_count():
      return states[own]  # the writer's own layout: each process takes its own position
    raise LayoutMismatch(
        f"checkpoint {step} in {self.directory} was written by {len(states)} processes whose "
        f"data positions differ; it resumes only with {len(states)} processes")

  def restore_latest(self, abstract_state, data_iter: grain.DatasetIterator):
    """(step, state) from the newest readable checkpoint, with `data_iter` rewound to
    it; None when the run has none. The arrays take `abstract_state`'s shardings."""
    def restore(step):
      position = self.data_position(step)
      restored = self.manager.restore(
          step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
      data_iter.set_state(position)
      return restored["state"]
    return self._restore_newest(restore)

  def restore_params(self, abstract: dict, step: int | None = None) -> tuple[int, dict]:
    """(step, subtree) of the newest readable checkpoint (or of `step`): only the train
    state's top-level fields `abstract` names (e.g. params or ema), not the optimizer's
    moments, which sampling and evaluation do not need."""
    def restore(s):
      args = ocp.args.PyTreeRestore(
          item=abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
          partial_restore=True)
      return self.manager.restore(s, args=ocp.args.Composite(state=args))["state"]
    steps = None if step is None else [step]
    if step is not None and step not in self.manager.all_steps():
      raise UserError(f"{self.directory} has no checkpoint at step {step} (it has "
                      f"{', '.join(map(str, self.all_steps())) or 'none'})")
    found = self._restore_newest(restore, steps)
    if found is None:
      raise UserError(f"{os.path.dirname(self.directory)} has no checkpoint to load")
    return found

  def wait(self) -> None:
    with self._write_failures(self._writing):
      self.manager.wait_until_finished()
    self._writing = None

  def close(self) -> None:
    with self._write_failures(self._writing):
      self.manager.close()
