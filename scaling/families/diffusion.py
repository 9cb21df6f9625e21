"""The diffusion family: a DiT learns to predict the noise (or v) added to images.

Training draws a timestep, noise and label dropout per example from the run's seed and
the step; the held-out metric is the denoising error at fixed noise levels (fixed noise
too), computed with the EMA weights that sampling uses. Costs are counted per image.
"""

from __future__ import annotations

from typing import Iterator

import jax
import numpy as np
from flax import nnx

from scaling import mesh as mesh_lib
from scaling.config import ConfigError, require
from scaling.data import images
from scaling.generate import diffusion
from scaling.models import counting
from scaling.models.dit import DiT, check_shapes
from scaling.train import objectives
from scaling.train.state import eager_sharding

# The fields each section may have; anything else is a typo and an error.
SCHEMA = {
    "": {"name", "seed", "model", "mesh", "data", "diffusion", "train", "eval", "checkpoint"},
    "model": {"kind", "d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff", "mlp",
              "norm_eps", "dtype", "attention", "scan_layers", "remat", "patch_size"},
    "mesh": {"data", "fsdp", "tensor", "rules"},
    "data": {"kind", "name", "image_size", "channels", "num_classes", "data_dir", "seed"},
    "diffusion": {"schedule", "timesteps", "prediction", "label_dropout", "ema_decay",
                  "eval_timesteps", "sampler", "sample_steps", "eta", "guidance"},
    "train": {"steps", "batch_size", "optimizer", "learning_rate", "schedule", "warmup_steps",
              "decay_fraction", "final_lr_fraction", "weight_decay", "b1", "b2", "grad_clip",
              "log_every"},
    "eval": {"every_steps", "batch_size", "max_examples"},
    "checkpoint": {"every_steps", "max_to_keep", "async_save"},
}


def check_config(cfg) -> None:
  """Schema and values of a diffusion config; raises ConfigError naming the field."""
  from scaling.train.validate import check_schema, check_transformer
  check_schema(cfg, SCHEMA)
  check_transformer(cfg.model)
  images.check(cfg.data)
  check_shapes(cfg.model, cfg.data.image_size)
  f = cfg.diffusion
  require(f.schedule in diffusion.SCHEDULES, "diffusion.schedule",
          f"unknown {f.schedule!r}; choose from {', '.join(diffusion.SCHEDULES)}")
  require(f.timesteps >= 2, "diffusion.timesteps", f"must be at least 2, got {f.timesteps}")
  require(0 <= f.label_dropout < 1, "diffusion.label_dropout",
          f"must be in [0, 1), got {f.label_dropout}")
  require(0 <= f.ema_decay < 1, "diffusion.ema_decay", f"must be in [0, 1), got {f.ema_decay}")
  require(len(f.eval_timesteps) > 0 and all(0 <= t < f.timesteps for t in f.eval_timesteps),
          "diffusion.eval_timesteps", f"need timesteps in [0, {f.timesteps}), got "
          f"{tuple(f.eval_timesteps)}")
  schedule = diffusion.make_schedule(f.schedule, f.timesteps)
  try:
    diffusion.check_sampling(schedule, steps=f.sample_steps, method=f.sampler, eta=f.eta,
                             guidance=f.guidance, prediction=f.prediction)
  except ConfigError as e:  # Name the config section the sampler's message refers to.
    raise ConfigError(f"config.{e}") from None


class DiffusionFamily:
  """Class-conditional image diffusion with a DiT; costs counted per training image."""

  unit = "sample"

  def __init__(self, cfg):
    self.cfg = cfg
    self.schedule = diffusion.make_schedule(cfg.diffusion.schedule, cfg.diffusion.timesteps)
    self.ema_decay = cfg.diffusion.ema_decay
    self.null_class = cfg.data.num_classes
    self.eval_timesteps = tuple(int(t) for t in cfg.diffusion.eval_timesteps)

  def make_model(self) -> nnx.Module:
    d = self.cfg.data
    with eager_sharding():
      return DiT(self.cfg.model, d.image_size, d.channels, d.num_classes,
                 rngs=nnx.Rngs(params=self.cfg.seed))

  def params(self) -> counting.ParamCounts:
    d = self.cfg.data
    return counting.dit_params(self.cfg.model, d.image_size, d.channels, d.num_classes)

  def flops_per_unit(self) -> float:
    d = self.cfg.data
    return counting.dit_flops_per_sample(self.cfg.model, d.image_size, d.channels)

  def units_per_step(self) -> int:
    return self.cfg.train.batch_size

  def load_data(self) -> dict:
    """The train split and the held-out split (written once, then read from disk)."""
    return {"train": images.load(self.cfg.data, "train"),
            "eval": images.load(self.cfg.data, "test")}

  def save_artifacts(self, data: dict, workdir: str) -> None:
    del data, workdir  # Images need no tokenizer; the config says everything else.

  def train_dataset(self, data: dict, process_index: int, process_count: int):
    return images.train_dataset(data["train"], global_batch=self.cfg.train.batch_size,
                                seed=self.cfg.data.seed, process_index=process_index,
                                process_count=process_count)

  def eval_batches(self, data: dict, process_index: int, process_count: int) -> Iterator:
    e = self.cfg.eval
    return images.eval_batches(data["eval"], global_batch=e.batch_size,
                               max_examples=e.max_examples, process_index=process_index,
                               process_count=process_count)

  def synthetic_batch(self, rng) -> dict:
    """A global batch of random images and labels, shaped like the real ones (benchmarks)."""
    d, B = self.cfg.data, self.cfg.train.batch_size
    images = rng.uniform(-1, 1, (B, d.image_size, d.image_size, d.channels))
    return {"images": images.astype(np.float32),
            "labels": rng.integers(0, d.num_classes, B).astype(np.int32)}

  def batch_sharding(self, mesh, rules) -> jax.sharding.NamedSharding:
    # Only the leading (batch) axis is split, so one sharding fits images and labels.
    return mesh_lib.batch_sharding(mesh, rules, ndim=1)

  def loss(self, model, batch, key) -> jax.Array:
    f = self.cfg.diffusion
    return objectives.diffusion_loss(model, batch["images"], batch["labels"], key,
                                     self.schedule, prediction=f.prediction,
                                     label_dropout=f.label_dropout, null_class=self.null_class)

  def eval_sums(self, model, batch, key) -> dict:
    sums = objectives.denoising_sums(model, batch["images"], batch["labels"], key,
                                     self.schedule, prediction=self.cfg.diffusion.prediction,
                                     timesteps=self.eval_timesteps, mask_B=batch["mask"])
    out = {f"mse_t{t}": sums["mse"][i] for i, t in enumerate(self.eval_timesteps)}
    out["examples"] = sums["examples"][0]
    return out

  def eval_metrics(self, totals: dict[str, float]) -> dict[str, float]:
    """Denoising error per fixed timestep, and their mean as `eval_loss`."""
    n = max(totals["examples"], 1)
    per_t = {f"eval_mse_t{t}": totals[f"mse_t{t}"] / n for t in self.eval_timesteps}
    return {"eval_loss": sum(per_t.values()) / len(per_t), **per_t,
            "eval_examples": totals["examples"]}
