"""The GAN family: a class-conditional generator and discriminator trained against each other.

The baseline diffusion replaced, on the same data, harness and metrics as the DiT
(`scaling.families.diffusion`). Each training step is two alternating steps, each with
its own optimizer (both states live in the one train state and checkpoint):

  discriminator   non-saturating loss  softplus(-D(x, y)) + softplus(D(G(z, y), y)) on a
                  batch of real images and as many fakes of the same labels, plus
                  gamma/2 * E ||grad_x D(x, y)||^2 on the reals where `gan.r1_gamma` > 0
                  (R1, Mescheder et al. 2018)
  generator       softplus(-D(G(z', y), y)) against the discriminator just updated

Latents are standard normal, drawn per example from the run's seed and the step. The
held-out metric (`eval_loss`) is the discriminator's loss on held-out real images and
fakes of fixed latents: about log 4 = 1.386 when it cannot tell them apart; it is no
measure of sample quality (see `scaling eval`: FD, KID, precision, recall, coverage). An
EMA of the weights is kept; sampling and evaluation use the EMA generator. Costs are
counted per real training image.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from scaling import mesh as mesh_lib
from scaling import optim
from scaling.config import require
from scaling.data import image_sets
from scaling.families import base, image_data
from scaling.models import counting
from scaling.models.dit import check_shapes
from scaling.models.gan import GAN

PLAYERS = ("generator", "discriminator")


def base_config() -> ml_collections.ConfigDict:
  """Every field of a GAN config with its default (two ~50k-parameter transformers on 8x8
  digits); presets in `configs/gan/` start from here."""
  return ml_collections.ConfigDict(dict(
      name="gan",
      seed=0,
      model=dict(              # the shape of each network (generator and discriminator)
          kind="gan",
          d_model=32, n_layers=2, n_heads=2, n_kv_heads=2, d_ff=128,
          mlp="gelu",              # gelu | swiglu
          norm_eps=1e-6,
          dtype="float32",         # compute dtype; parameters are always float32
          attention="xla",         # xla | cudnn
          scan_layers=False,
          remat="none",            # none | full | dots_saveable
          parametrization="sp",    # sp only: muP's table is derived for one objective
          base_width=32,
          patch_size=2,            # image_size must be divisible by it
      ),
      mesh=dict(data=-1, fsdp=1, tensor=1, rules=mesh_lib.DEFAULT_RULES),
      data=image_data.data_section(),
      gan=dict(
          latent_dim=32,           # width of the generator's standard normal input
          r1_gamma=1.0,            # R1 penalty weight on the discriminator (0: off)
          discriminator_lr_ratio=1.0,  # its learning rate / train.learning_rate
          ema_decay=0.999,         # EMA of the weights, used for evaluation and sampling
      ),
      # Adam with b1 = 0 and no clipping, as GANs are usually trained (StyleGAN2).
      train=base.train_section(steps=2_000, learning_rate=1e-3, schedule="constant",
                               warmup_steps=50, b1=0.0, grad_clip=0.0),
      eval=dict(every_steps=1_000, batch_size=256, max_examples=1_024),
      checkpoint=base.checkpoint_section(),
  ))


def _check_gan(cfg) -> None:
  g = cfg.gan
  require(g.latent_dim > 0, "gan.latent_dim", f"must be positive, got {g.latent_dim}")
  require(g.r1_gamma >= 0, "gan.r1_gamma", f"must be >= 0 (0 = off), got {g.r1_gamma}")
  require(g.discriminator_lr_ratio > 0, "gan.discriminator_lr_ratio",
          f"must be positive, got {g.discriminator_lr_ratio}")
  require(0 <= g.ema_decay < 1, "gan.ema_decay", f"must be in [0, 1), got {g.ema_decay}")
  require(cfg.model.parametrization == "sp", "model.parametrization",
          "a GAN trains under sp only (muP's learning-rate table assumes one objective)")
  require(cfg.train.microbatches == 1, "train.microbatches",
          "a GAN's two alternating steps are not accumulated over microbatches; use 1")


@dataclasses.dataclass(frozen=True)
class TwoPlayers:
  """One optimizer per network; the state is {"generator": ..., "discriminator": ...}."""
  generator: optax.GradientTransformation
  discriminator: optax.GradientTransformation

  def init(self, params: nnx.State) -> dict:
    return {p: getattr(self, p).init(params[p]) for p in PLAYERS}


def _join(generator: nnx.State, discriminator: nnx.State) -> nnx.State:
  """Both networks' parameters as one state, shaped like the model's."""
  return nnx.State({"generator": generator.raw_mapping,
                    "discriminator": discriminator.raw_mapping})


def _step(tx, grads, opt_state, params):
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


class GANFamily(image_data.ImageData):
  """Class-conditional image GAN of two transformers; costs counted per real image."""

  kind = "gan"
  unit = "sample"
  base_config = staticmethod(base_config)

  def __init__(self, cfg):
    self.cfg = cfg
    self.ema_decay = cfg.gan.ema_decay
    self.latent_dim = cfg.gan.latent_dim
    self.r1_gamma = float(cfg.gan.r1_gamma)

  def check(self) -> None:
    base.check_transformer(self.cfg.model)
    image_sets.check(self.cfg.data)
    check_shapes(self.cfg.model, self.cfg.data.image_size)
    _check_gan(self.cfg)

  def make_model(self, rngs: nnx.Rngs | None = None) -> nnx.Module:
    d = self.cfg.data
    with base.eager_sharding():
      return GAN(self.cfg.model, d.image_size, d.channels, d.num_classes, self.latent_dim,
                 rngs=rngs or nnx.Rngs(params=self.cfg.seed))

  def params(self) -> counting.ParamCounts:
    """Both networks: what training holds and updates (the generator alone samples)."""
    d = self.cfg.data
    return counting.gan_params(self.cfg.model, d.channels, d.num_classes,
                               self.latent_dim)["total"]

  def flops_per_unit(self) -> float:
    d = self.cfg.data
    return counting.gan_flops_per_sample(self.cfg.model, d.image_size, d.channels,
                                         self.latent_dim, r1=self.r1_gamma > 0)

  def units_per_step(self) -> int:
    return self.cfg.train.batch_size

  # --- objective ----------------------------------------------------------------------

  def optimizer(self) -> TwoPlayers:
    t = self.cfg.train
    d_train = ml_collections.ConfigDict(t.to_dict())
    d_train.learning_rate = t.learning_rate * self.cfg.gan.discriminator_lr_ratio
    return TwoPlayers(optim.optimizer(t), optim.optimizer(d_train))

  def _d_objective(self, model, batch, key):
    x_BHWC, labels_B = batch["images"], batch["labels"]
    fake_BHWC = jax.lax.stop_gradient(
        model.generator(model.latents(key, labels_B.shape[0]), labels_B))
    real_B = model.discriminator(x_BHWC, labels_B)
    fake_B = model.discriminator(fake_BHWC, labels_B)
    loss = jax.nn.softplus(-real_B).mean() + jax.nn.softplus(fake_B).mean()
    r1 = jnp.zeros(())
    if self.r1_gamma > 0:
      grad_BHWC = jax.grad(lambda x: model.discriminator(x, labels_B).sum())(x_BHWC)
      r1 = 0.5 * self.r1_gamma * jnp.square(grad_BHWC).sum((1, 2, 3)).mean()
    return loss + r1, {"d_loss": loss, "r1": r1, "d_real": real_B.mean(),
                       "d_fake": fake_B.mean()}

  def update(self, model_of, tx: TwoPlayers, params, opt_state, batch, key):
    """A discriminator step, then a generator step against the updated discriminator."""
    g, d = params["generator"], params["discriminator"]
    key_d, key_g = jax.random.split(key)

    def d_objective(d):
      return self._d_objective(model_of(_join(g, d)), batch, key_d)

    (loss, aux), d_grads = jax.value_and_grad(d_objective, has_aux=True)(d)
    d, d_state = _step(tx.discriminator, d_grads, opt_state["discriminator"], d)

    def g_objective(g):
      model = model_of(_join(g, d))
      labels_B = batch["labels"]
      fake_BHWC = model.generator(model.latents(key_g, labels_B.shape[0]), labels_B)
      return jax.nn.softplus(-model.discriminator(fake_BHWC, labels_B)).mean()

    g_loss, g_grads = jax.value_and_grad(g_objective)(g)
    g, g_state = _step(tx.generator, g_grads, opt_state["generator"], g)
    d_norm, g_norm = optax.tree.norm(d_grads), optax.tree.norm(g_grads)
    metrics = {"loss": loss, "g_loss": g_loss, **aux, "d_grad_norm": d_norm,
               "g_grad_norm": g_norm, "grad_norm": jnp.sqrt(d_norm ** 2 + g_norm ** 2)}
    return _join(g, d), {"generator": g_state, "discriminator": d_state}, metrics

  def eval_sums(self, model, batch, key) -> dict:
    """The discriminator's loss and accuracy on held-out reals and on fixed-latent fakes."""
    x_BHWC, labels_B, mask_B = batch["images"], batch["labels"], batch["mask"]
    fake_BHWC = model.generator(model.latents(key, labels_B.shape[0]), labels_B)
    real_B = model.discriminator(x_BHWC, labels_B)
    fake_B = model.discriminator(fake_BHWC, labels_B)
    m = mask_B.astype(jnp.float32)
    return {"d_loss": ((jax.nn.softplus(-real_B) + jax.nn.softplus(fake_B)) * m).sum(),
            "g_loss": (jax.nn.softplus(-fake_B) * m).sum(),
            "d_correct": (((real_B > 0).astype(jnp.float32)
                           + (fake_B < 0).astype(jnp.float32)) * m).sum(),
            "examples": m.sum()}

  def eval_metrics(self, totals: dict[str, float]) -> dict[str, float]:
    n = max(totals["examples"], 1)
    return {"eval_loss": totals["d_loss"] / n, "eval_g_loss": totals["g_loss"] / n,
            "eval_d_accuracy": totals["d_correct"] / (2 * n),
            "eval_examples": totals["examples"]}

  def activations(self, model, batch, key) -> dict[str, jax.Array]:
    return model.activations(model.latents(key, batch["labels"].shape[0]), batch["labels"])
