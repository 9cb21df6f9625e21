"""Open a finished (or running) run directory: its config, tokenizer and trained model."""

from __future__ import annotations

import dataclasses
import os

import jax
from flax import nnx

from scaling import config as config_lib
from scaling import mesh as mesh_lib
from scaling.config import UserError
from scaling.data.tokenizer import Tokenizer
from scaling.train import optim
from scaling.train.checkpoint import Checkpointer
from scaling.train.state import StateFactory


@dataclasses.dataclass
class Run:
  workdir: str
  cfg: object
  tokenizer: Tokenizer
  model: nnx.Module
  step: int

  @property
  def context(self) -> int:
    """Longest sequence (prompt + continuation) the model was trained on."""
    return self.cfg.data.seq_len


def load(workdir: str, devices=None) -> Run:
  """Restores the latest checkpoint's parameters onto `devices` (default: the first)."""
  if not os.path.isdir(workdir):
    raise UserError(f"run directory not found: {workdir}")
  config_path = os.path.join(workdir, "config.json")
  if not os.path.exists(config_path):
    raise UserError(f"{workdir} is not a run directory (no config.json)")
  cfg = config_lib.from_json(config_path)
  tokenizer = Tokenizer.load(os.path.join(workdir, "tokenizer.model"))
  with cfg.unlocked():
    cfg.mesh.update(data=1, fsdp=1, tensor=1)
  devices = list(devices or jax.devices()[:1])
  mesh = mesh_lib.make_mesh(cfg.mesh, devices)
  rules = mesh_lib.complete_rules(cfg.mesh.rules)
  checkpoints = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(checkpoints):
    raise UserError(f"{workdir} has no checkpoint to load")
  checkpointer = Checkpointer(checkpoints, cfg.checkpoint)
  try:
    step = checkpointer.latest_step()
    if step is None:
      raise UserError(f"{workdir} has no checkpoint to load")
    with mesh_lib.activate(mesh, rules):
      factory = StateFactory(cfg.model, cfg.data.vocab_size, cfg.seed,
                             optim.optimizer(cfg.train), mesh)
      state = checkpointer.restore_state(step, factory.abstract)
  finally:
    checkpointer.close()
  return Run(workdir, cfg, tokenizer, factory.model(state.params), step)
