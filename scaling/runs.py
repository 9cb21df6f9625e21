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
from scaling.families import family_for
from scaling.train.state import StateFactory


@dataclasses.dataclass
class Run:
  workdir: str
  cfg: object
  tokenizer: Tokenizer | None  # None for image models
  model: nnx.Module            # with the EMA weights where the run keeps them
  step: int
  mesh: jax.sharding.Mesh      # the model's parameters are replicated over it
  rules: tuple
  family: object               # `scaling.families`: schedule, defaults, model constructor

  @property
  def kind(self) -> str:
    return self.cfg.model.kind

  @property
  def context(self) -> int:
    """Longest sequence (prompt + continuation) the model was trained on."""
    return self.cfg.data.seq_len


def load(workdir: str, devices=None) -> Run:
  """Restores the latest checkpoint's parameters onto `devices`.

  By default an LM is loaded on the first device and an image model on all of them.
  The parameters are replicated on a data-parallel mesh over `devices`, so callers can
  split a batch of samples over them.
  """
  if not os.path.isdir(workdir):
    raise UserError(f"run directory not found: {workdir}")
  config_path = os.path.join(workdir, "config.json")
  if not os.path.exists(config_path):
    raise UserError(f"{workdir} is not a run directory (no config.json)")
  cfg = config_lib.from_json(config_path)
  tokenizer = None
  if cfg.model.kind == "lm":
    tokenizer = Tokenizer.load(os.path.join(workdir, "tokenizer.model"))
  with cfg.unlocked():
    cfg.mesh.update(data=-1, fsdp=1, tensor=1)
  # Image samplers split their batch over every device; the LM decoder uses one.
  devices = list(devices or (jax.devices() if cfg.model.kind == "dit" else jax.devices()[:1]))
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
      family = family_for(cfg)
      ema = family.ema_decay is not None
      factory = StateFactory(family.make_model, optim.optimizer(cfg.train), mesh, ema=ema)
      state = checkpointer.restore_state(step, factory.abstract)
  finally:
    checkpointer.close()
  model = factory.model(state.ema if ema else state.params)
  return Run(workdir, cfg, tokenizer, model, step, mesh, rules, family)
