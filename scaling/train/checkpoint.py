"""Orbax checkpoints of the train state together with the grain iterator's position.

Every process takes part in saving and restoring: orbax writes the array shards each
process owns, and grain writes one small JSON file of iterator state per process.
"""

from __future__ import annotations

import os

import grain
import orbax.checkpoint as ocp


class Checkpointer:
  """Saves every `every_steps` steps (asynchronously), keeps the last `max_to_keep`."""

  def __init__(self, directory: str, ckpt_cfg):
    self.every_steps = ckpt_cfg.every_steps
    options = ocp.CheckpointManagerOptions(
        max_to_keep=ckpt_cfg.max_to_keep,
        enable_async_checkpointing=ckpt_cfg.async_save,
        create=True,
    )
    self.manager = ocp.CheckpointManager(os.path.abspath(directory), options=options,
                                         item_names=("state", "data"))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def due(self, step: int) -> bool:
    return self.every_steps > 0 and step % self.every_steps == 0

  def save(self, step: int, state, data_iter: grain.DatasetIterator, *,
           force: bool = False) -> bool:
    return self.manager.save(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                data=grain.checkpoint.CheckpointSave(data_iter)),
        force=force)

  def restore(self, step: int, abstract_state, data_iter: grain.DatasetIterator):
    """Restores the state into `abstract_state`'s shardings and rewinds `data_iter`."""
    restored = self.manager.restore(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                data=grain.checkpoint.CheckpointRestore(data_iter)))
    return restored["state"]

  def restore_state(self, step: int, abstract_state):
    """Restores only the train state (for sampling and evaluation)."""
    restored = self.manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
    return restored["state"]

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()
