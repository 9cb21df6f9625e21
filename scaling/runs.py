"""Open a finished (or running) run directory: its config, artifacts and trained model.

Only reads: the config is JSON and the weights come from orbax checkpoints, so opening
a run directory copied from elsewhere runs no code from it.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import ml_collections
from flax import nnx

from scaling import config as config_lib
from scaling import mesh as mesh_lib
from scaling.errors import UserError
from scaling.families import Family, family_for
from scaling.generate import kinds as generate_kinds
from scaling.rundir import RunDir
from scaling.train.checkpoint import Checkpointer
from scaling.train.state import StateSpec


@dataclasses.dataclass
class Run:
  workdir: str
  cfg: ml_collections.ConfigDict
  family: Family
  model: nnx.Module            # with the EMA weights where the run keeps them
  step: int
  mesh: jax.sharding.Mesh      # the model's parameters are replicated over it
  rules: tuple
  artifacts: dict              # what training saved beside the checkpoints (a tokenizer)
  eval_path: str               # where `scaling eval` writes this checkpoint's scores

  @property
  def tokenizer(self):
    return self.artifacts.get("tokenizer")

  @property
  def context(self) -> int:
    """Longest sequence (prompt + continuation) the model was trained on."""
    return self.cfg.data.seq_len


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """A run directory's resolved config (one `error:` line when it is missing or damaged)."""
  if not os.path.isdir(workdir):
    raise UserError(f"run directory not found: {workdir}")
  path = RunDir(workdir).config
  if not os.path.exists(path):
    raise UserError(f"{workdir} is not a run directory (no config.json)")
  return config_lib.from_json(path)


def load(workdir: str, devices=None, step: int | None = None) -> Run:
  """Restores the newest readable checkpoint's weights (or those of `step`).

  The parameters (or their EMA) are replicated on a data-parallel mesh over `devices`
  (default: the kind's inference devices), so callers can split a batch over them.
  Optimizer moments are not read.
  """
  cfg = load_config(workdir)
  family = family_for(cfg)
  kind = generate_kinds.for_kind(cfg.model.kind)
  artifacts = kind.load_artifacts(workdir)
  with cfg.unlocked():
    cfg.mesh.update(data=-1, fsdp=1, tensor=1)
  devices = list(devices or kind.inference_devices(jax.devices()))
  mesh = mesh_lib.make_mesh(cfg.mesh, devices)
  rules = mesh_lib.complete_rules(cfg.mesh.rules)
  run_dir = RunDir(workdir)
  if not os.path.isdir(run_dir.checkpoints):
    raise UserError(f"{workdir} has no checkpoint to load")
  field = "ema" if family.ema_decay is not None else "params"
  with Checkpointer(run_dir.checkpoints, cfg.checkpoint, read_only=True) as checkpointer, \
      mesh_lib.activate(mesh, rules):
    spec = StateSpec(family.make_model, family.optimizer(), mesh,
                     ema=family.ema_decay is not None)
    found_step, restored = checkpointer.restore_params(
        {field: getattr(spec.abstract, field)}, step)
  eval_path = run_dir.eval if step is None else run_dir.eval_at(found_step)
  return Run(workdir, cfg, family, spec.model(restored[field]), found_step, mesh, rules,
             artifacts, eval_path)
