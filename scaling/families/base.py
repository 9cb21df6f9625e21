"""The `Family` protocol (described in `scaling.families`), and the config sections,
checks and update step that several families share."""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar, Iterator, Protocol

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from scaling import mesh as mesh_lib
from scaling import optim
from scaling.config import require
from scaling.models.counting import ParamCounts


class Family(Protocol):
  """What training needs from a kind of model; `scaling.families` says it in prose."""

  # Config: its schema with defaults, and the checks of its values.
  kind: ClassVar[str]                 # the `model.kind` this family trains
  cfg: ml_collections.ConfigDict

  @staticmethod
  def base_config() -> ml_collections.ConfigDict:
    """Every field of the family's config with its default: also the accepted schema."""

  def check(self) -> None:
    """Checks the family's sections (values, not devices); ConfigError naming the field."""

  # Model and what it costs.
  unit: ClassVar[str]                 # what costs are counted in: "token" or "sample"

  def make_model(self, rngs: nnx.Rngs | None = None) -> nnx.Module:
    """The model; its parameters are created in their shards under an active mesh."""

  def params(self) -> ParamCounts: ...
  def flops_per_unit(self) -> float: ...
  def units_per_step(self) -> int: ...

  # Data: global batches are dicts of arrays whose leading axis is the batch.
  def load_data(self) -> Any:
    """Prepares (once, then from disk) and returns the training and held-out data."""

  def save_artifacts(self, data: Any, workdir: str) -> None:
    """Writes what a trained run needs besides its config and checkpoints (a tokenizer)."""

  def train_dataset(self, data: Any, process_index: int, process_count: int): ...
  def eval_batches(self, data: Any, process_index: int, process_count: int) -> Iterator: ...
  def synthetic_batch(self, rng) -> dict: ...

  # Objective and update.
  ema_decay: float | None             # None: no weight average is kept

  def optimizer(self) -> Any:
    """What `update` steps with; its `init(params)` makes the optimizer state."""

  def update(self, model_of, tx, params: nnx.State, opt_state, batch, key
             ) -> tuple[nnx.State, Any, dict[str, jax.Array]]:
    """One training step's new (params, opt_state) and metrics (at least `loss`, which
    must stay finite, and `grad_norm`). `model_of(params)` is the model."""

  # Held-out metrics, summed over batches and then divided.
  def eval_sums(self, model, batch, key) -> dict: ...
  def eval_metrics(self, totals: dict[str, float]) -> dict[str, float]: ...

  def activations(self, model, batch, key) -> dict[str, jax.Array]:
    """Mean absolute activation of each layer on a batch (muP's coordinate checks)."""


def split_microbatches(batch: dict, k: int) -> dict:
  """[B, ...] -> [k, B/k, ...]: microbatch `i` takes rows i, i + k, i + 2k, ..., so each
  device's rows are shared evenly between the microbatches (no data moves)."""
  def split(x):
    micro = jnp.swapaxes(x.reshape(x.shape[0] // k, k, *x.shape[1:]), 0, 1)
    return mesh_lib.constrain(micro, (None, "batch") + (None,) * (x.ndim - 1))
  return jax.tree.map(split, batch)


def accumulated_gradients(loss_terms, params, batch, key, microbatches: int = 1):
  """The loss `total / weight` and its gradient, over the whole batch.

  `loss_terms(params, batch, key) -> (total, weight)`: a sum over the batch and what it
  is divided by (tokens, examples). With `microbatches` > 1 the gradients of the totals
  are added up over microbatches in a scan and divided by the summed weight at the end,
  which equals the whole batch's gradient up to float rounding, in a k-th of the
  activation memory. Microbatch `i` draws its randomness from `fold_in(key, i)`.
  """
  if microbatches == 1:
    def loss_fn(p):
      total, weight = loss_terms(p, batch, key)
      return total / jnp.maximum(weight, 1.0)
    return jax.value_and_grad(loss_fn)(params)

  def body(carry, xs):
    grads, total, weight = carry
    micro, i = xs
    (t, w), g = jax.value_and_grad(  # the total is differentiated, the weight carried
        lambda p: loss_terms(p, micro, jax.random.fold_in(key, i)), has_aux=True)(params)
    return (jax.tree.map(jnp.add, grads, g), total + t, weight + w), None

  zeros = jax.tree.map(jnp.zeros_like, params)
  micro = split_microbatches(batch, microbatches)
  (grads, total, weight), _ = jax.lax.scan(
      body, (zeros, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32)),
      (micro, jnp.arange(microbatches)))
  weight = jnp.maximum(weight, 1.0)
  return total / weight, jax.tree.map(lambda g: g / weight, grads)


def gradient_update(loss_terms, tx: optax.GradientTransformation, params, opt_state, batch,
                    key, microbatches: int = 1):
  """One optimizer step down the gradient of the loss (see `accumulated_gradients`)."""
  loss, grads = accumulated_gradients(loss_terms, params, batch, key, microbatches)
  updates, opt_state = tx.update(grads, opt_state, params)
  return (optax.apply_updates(params, updates), opt_state,
          {"loss": loss, "grad_norm": optax.tree.norm(grads)})


class OneObjective:
  """For a family with one loss over all its parameters and one optimizer (with muP's
  per-parameter learning rates where the config asks for them). The family gives
  `loss_terms(model, batch, key) -> (total, weight)`: the loss is total / weight."""

  def optimizer(self) -> optax.GradientTransformation:
    return optim.for_model(self.cfg, self.make_model)

  def update(self, model_of, tx, params, opt_state, batch, key):
    return gradient_update(lambda p, b, k: self.loss_terms(model_of(p), b, k), tx, params,
                           opt_state, batch, key, self.cfg.train.microbatches)


@contextlib.contextmanager
def eager_sharding():
  """Parameters are created in their shards under a mesh; outside one there is nothing
  to shard onto, so they keep their logical names and live on one device."""
  with nnx.use_eager_sharding(not jax.sharding.get_abstract_mesh().empty):
    yield


def train_section(**overrides) -> dict:
  """The `train` section every family's base config shares: these defaults, with the
  family's own `overrides`."""
  return {**dict(
      steps=1_000, batch_size=128,
      microbatches=1,          # gradients accumulated over this many parts of each batch
      optimizer="adamw", learning_rate=1e-3,
      schedule="cosine",       # cosine | constant | wsd
      warmup_steps=100,
      decay_fraction=0.2,      # wsd: share of steps spent decaying
      final_lr_fraction=0.1, weight_decay=0.0, b1=0.9, b2=0.99, grad_clip=1.0,
      log_every=50,
      norms=True,              # parameter and update norm of each layer group, per log
  ), **overrides}


def checkpoint_section() -> dict:
  """The `checkpoint` section every family's base config shares, with its defaults."""
  return dict(
      every_steps=1_000, max_to_keep=2, async_save=True,
      keep_steps=(),           # also save and keep these (checkpoint evals, branches)
      preemption_check_every=10,  # multi-process runs agree on SIGTERM this often
  )


def check_transformer(m, mlps: tuple[str, ...] = ("gelu", "swiglu")) -> None:
  """The checks every transformer config (`model` section) must pass; `mlps` are the
  feed-forward layers the model kind has."""
  for field in ("d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff"):
    require(m[field] > 0, f"model.{field}", f"must be positive, got {m[field]}")
  require(m.d_model % m.n_heads == 0, "model.d_model",
          f"d_model={m.d_model} is not divisible by n_heads={m.n_heads}")
  require((m.d_model // m.n_heads) % 2 == 0, "model.d_model",
          f"head dim d_model/n_heads={m.d_model // m.n_heads} must be even for rotary embedding")
  require(m.n_heads % m.n_kv_heads == 0, "model.n_kv_heads",
          f"n_heads={m.n_heads} is not divisible by n_kv_heads={m.n_kv_heads}")
  require(m.mlp in mlps, "model.mlp", f"unknown {m.mlp!r}; choose {' or '.join(mlps)}")
  require(m.dtype in ("float32", "bfloat16"), "model.dtype",
          f"unknown {m.dtype!r}; choose float32 or bfloat16")
  require(m.attention in ("xla", "cudnn"), "model.attention",
          f"unknown {m.attention!r}; choose xla or cudnn")
  require(m.attention != "cudnn" or jax.default_backend() == "gpu", "model.attention",
          "cudnn attention needs a GPU")
  require(m.attention != "cudnn" or m.dtype == "bfloat16", "model.attention",
          "cudnn attention needs model.dtype=bfloat16")
  require(m.remat in ("none", "full", "dots_saveable"), "model.remat",
          f"unknown {m.remat!r}; choose none, full or dots_saveable")
  require(m.parametrization in ("sp", "mup"), "model.parametrization",
          f"unknown {m.parametrization!r}; choose sp or mup")
  require(m.base_width > 0, "model.base_width", f"must be positive, got {m.base_width}")


def check_training(cfg) -> None:
  """The `train`, `eval` and `checkpoint` sections, shared by every family."""
  t = cfg.train
  require(t.steps > 0, "train.steps", f"must be positive, got {t.steps}")
  require(t.batch_size > 0, "train.batch_size", f"must be positive, got {t.batch_size}")
  require(t.learning_rate > 0, "train.learning_rate", f"must be positive, got {t.learning_rate}")
  optim.check(t)
  require(t.log_every > 0, "train.log_every", f"must be positive, got {t.log_every}")
  require(t.microbatches >= 1 and t.batch_size % t.microbatches == 0, "train.microbatches",
          f"must be at least 1 and divide train.batch_size={t.batch_size}, got "
          f"{t.microbatches}")
  require(cfg.eval.every_steps >= 0, "eval.every_steps",
          f"must be >= 0 (0: only at the end), got {cfg.eval.every_steps}")
  require(cfg.eval.batch_size > 0, "eval.batch_size", "must be positive")
  require(cfg.checkpoint.max_to_keep > 0, "checkpoint.max_to_keep", "must be positive")
