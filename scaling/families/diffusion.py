"""The diffusion family: a DiT learns to predict the noise (or v) added to images.

Training draws a timestep, noise and label dropout per example from the run's seed and
the step; the held-out metric is the denoising error at fixed noise levels (fixed noise
too), computed with the EMA weights that sampling uses. Costs are counted per image. A
trained run is sampled by `scaling.generate.dit` and scored by `scaling.evals.dit`.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from scaling import mesh as mesh_lib
from scaling.config import require
from scaling.errors import ConfigError
from scaling.data import image_sets
from scaling.families import base, image_data
from scaling.generate import diffusion
from scaling.models import counting
from scaling.models.dit import DiT, check_shapes

# The config field of each sampler setting, for error messages.
FIELDS = {"steps": "sample_steps", "method": "sampler"}


def base_config() -> ml_collections.ConfigDict:
  """Every field of a DiT config with its default (a ~250k-parameter DiT on 8x8 digits);
  presets in `configs/diffusion/` start from here."""
  return ml_collections.ConfigDict(dict(
      name="dit",
      seed=0,
      model=dict(
          kind="dit",
          d_model=64, n_layers=3, n_heads=4, n_kv_heads=4, d_ff=256,
          mlp="gelu",              # gelu | swiglu
          norm_eps=1e-6,
          dtype="float32",         # compute dtype; parameters are always float32
          attention="xla",         # xla | cudnn
          scan_layers=False,
          remat="none",            # none | full | dots_saveable
          parametrization="sp",    # sp | mup (see scaling.optim.lr_scales)
          base_width=64,           # mup: the d_model the hyperparameters were tuned at
          patch_size=2,            # image_size must be divisible by it
      ),
      mesh=dict(data=-1, fsdp=1, tensor=1, rules=mesh_lib.DEFAULT_RULES),
      data=image_data.data_section(),
      diffusion=dict(
          schedule="cosine",       # cosine | linear
          schedule_shift=1.0,      # > 1: more noise at every step, for redundant pixels
          timesteps=1000,          # T of the training process
          prediction="eps",        # eps | v: what the model outputs
          label_dropout=0.1,       # share of labels replaced by the null class (for guidance)
          ema_decay=0.999,         # EMA of the weights, used for evaluation and sampling
          eval_timesteps=(50, 200, 500, 800),  # held-out denoising error at these levels
          sampler="ddim",          # defaults of `scaling sample` / `scaling eval`
          sample_steps=50,
          eta=0.0,
          guidance=2.0,            # 0 unconditional, 1 conditional, > 1 guided
      ),
      train=base.train_section(steps=3_000, learning_rate=2e-3),
      eval=dict(every_steps=1_000, batch_size=256, max_examples=1_024),
      checkpoint=base.checkpoint_section(),
  ))


def check_diffusion(f) -> None:
  require(f.timesteps >= 2, "diffusion.timesteps", f"must be at least 2, got {f.timesteps}")
  require(0 <= f.label_dropout < 1, "diffusion.label_dropout",
          f"must be in [0, 1), got {f.label_dropout}")
  require(0 <= f.ema_decay < 1, "diffusion.ema_decay", f"must be in [0, 1), got {f.ema_decay}")
  require(len(f.eval_timesteps) > 0 and all(0 <= t < f.timesteps for t in f.eval_timesteps),
          "diffusion.eval_timesteps", f"need timesteps in [0, {f.timesteps}), got "
          f"{tuple(f.eval_timesteps)}")
  try:
    schedule = diffusion.schedule_for(f)
    diffusion.check_sampling(schedule, steps=f.sample_steps, method=f.sampler, eta=f.eta,
                             guidance=f.guidance, prediction=f.prediction)
  except diffusion.SettingError as e:  # The maths names its setting; we name the field.
    raise ConfigError(f"config.diffusion.{FIELDS.get(e.setting, e.setting)}: {e}") from None


class DiffusionFamily(base.OneObjective, image_data.ImageData):
  """Class-conditional image diffusion with a DiT; costs counted per training image."""

  kind = "dit"
  unit = "sample"
  base_config = staticmethod(base_config)
  data_key = "images"  # the batch's field the model denoises

  def __init__(self, cfg):
    self.cfg = cfg
    self.ema_decay = cfg.diffusion.ema_decay
    self.null_class = cfg.data.num_classes
    self.eval_timesteps = tuple(int(t) for t in cfg.diffusion.eval_timesteps)
    try:  # the training noise schedule; `check` reports an impossible one by its field
      self.schedule = diffusion.schedule_for(cfg.diffusion)
    except diffusion.SettingError:
      self.schedule = None

  def check(self) -> None:
    base.check_transformer(self.cfg.model)
    image_sets.check(self.cfg.data)
    check_shapes(self.cfg.model, self.cfg.data.image_size)
    check_diffusion(self.cfg.diffusion)

  def make_model(self, rngs: nnx.Rngs | None = None) -> nnx.Module:
    d = self.cfg.data
    with base.eager_sharding():
      return DiT(self.cfg.model, d.image_size, d.channels, d.num_classes,
                 rngs=rngs or nnx.Rngs(params=self.cfg.seed))

  def params(self) -> counting.ParamCounts:
    d = self.cfg.data
    return counting.dit_params(self.cfg.model, d.image_size, d.channels, d.num_classes)

  def flops_per_unit(self) -> float:
    d = self.cfg.data
    return counting.dit_flops_per_sample(self.cfg.model, d.image_size, d.channels)

  def units_per_step(self) -> int:
    return self.cfg.train.batch_size

  # --- objective ----------------------------------------------------------------------

  def loss_terms(self, model, batch, key) -> tuple[jax.Array, jax.Array]:
    """The mean over the batch, with weight 1: microbatches are of equal size."""
    f = self.cfg.diffusion
    loss = diffusion.diffusion_loss(model, batch[self.data_key], batch["labels"], key,
                                    self.schedule, prediction=f.prediction,
                                    label_dropout=f.label_dropout, null_class=self.null_class)
    return loss, jnp.ones((), jnp.float32)

  def eval_sums(self, model, batch, key) -> dict:
    sums = diffusion.denoising_sums(model, batch[self.data_key], batch["labels"], key,
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

  def activations(self, model, batch, key) -> dict[str, jax.Array]:
    """On images noised to the middle of the schedule, where the model does most work."""
    x0_BHWC = batch[self.data_key]
    t_B = jax.numpy.full((x0_BHWC.shape[0],), self.schedule.timesteps // 2)
    noise_BHWC = jax.random.normal(key, x0_BHWC.shape, jax.numpy.float32)
    x_BHWC = diffusion.q_sample(self.schedule, x0_BHWC, t_B, noise_BHWC)
    return model.activations(x_BHWC, t_B, batch["labels"])
