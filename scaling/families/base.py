"""The protocol every model family implements, and the checks every family shares.

A family is everything that differs between kinds of generative model: its config
sections and their checks, the model, the data, the objective, the held-out metrics, the
unit training costs are counted in, and how a trained run is sampled and evaluated. The
training loop, checkpoints, summaries, sweeps and plots are shared and talk to a family
only through this protocol; adding a kind of model means one new module here (see
`scaling.families.lm`, `scaling.families.diffusion` and `scaling.families.gan`, which
has two networks, two optimizers and its own update step) and its model.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, ClassVar, Iterator, Protocol

import jax
import ml_collections
import optax
from flax import nnx

from scaling import config as config_lib
from scaling import optim
from scaling.config import require
from scaling.models.counting import ParamCounts


@dataclasses.dataclass(frozen=True)
class EvalRequest:
  """What `scaling eval` (or a sweep's `eval` section) asks of a trained run.

  `suites` None means the family's default; image families read the sampler lists
  (comma-separated strings, None: the config's own setting). The code suite draws
  `samples` programs per problem at `temperature` and `top_p`, from `seed`.
  """
  suites: tuple[str, ...] | None = None
  task_files: tuple[str, ...] = ()
  n: int | None = None
  batch: int = 128
  samplers: str | None = None
  steps: str | None = None
  guidance: str | None = None
  samples: int = 20
  temperature: float = 0.8
  top_p: float = 1.0
  seed: int = 0

  @classmethod
  def from_flags(cls, *, suite: str | None = None, task=(), n: int | None = None,
                 batch: int = 128, sampler: str | None = None, steps: str | None = None,
                 guidance: str | None = None, samples: int = 20, temperature: float = 0.8,
                 top_p: float = 1.0, seed: int = 0) -> "EvalRequest":
    """From `scaling eval`'s flags (or a sweep's `eval` section): `suite` is a
    comma-separated list (None: the family's default)."""
    suites = None
    if suite is not None:
      suites = tuple(s for s in str(suite).split(",") if s)
      if not suites and not task:
        raise config_lib.UserError("nothing to evaluate: give --suite and/or --task")
    request = cls(suites=suites, task_files=tuple(task or ()), n=n, batch=batch,
                  samplers=sampler, steps=None if steps is None else str(steps),
                  guidance=None if guidance is None else str(guidance), samples=int(samples),
                  temperature=float(temperature), top_p=float(top_p), seed=int(seed))
    request.check()
    return request

  def check(self) -> None:
    """Checks that need no run: counts and sizes."""
    if self.n is not None and self.n < 1:
      raise config_lib.UserError(f"-n must be at least 1, got {self.n}")
    if self.batch < 1:
      raise config_lib.UserError(f"--batch must be at least 1, got {self.batch}")
    if self.samples < 0:
      raise config_lib.UserError(f"--samples must be at least 0, got {self.samples}")
    # `not (a <= x)` rather than `x < a`, so that NaN is rejected too.
    if not self.temperature >= 0:
      raise config_lib.UserError(f"--temperature must be >= 0 (0 = greedy), got "
                                 f"{self.temperature}")
    if not 0 < self.top_p <= 1:
      raise config_lib.UserError(f"--top_p must be in (0, 1] (1 = off), got {self.top_p}")
    if self.seed < 0:
      raise config_lib.UserError(f"--seed must be at least 0, got {self.seed}")


@dataclasses.dataclass(frozen=True)
class SampleRequest:
  """What `scaling sample` asks: prompts and sampler settings for text, classes and
  denoising settings for images. Fields a family does not use must be left unset."""
  prompts: tuple[str, ...] = ()
  n: int | None = None
  temperature: float = 1.0
  top_k: int = 0
  top_p: float = 1.0
  min_p: float = 0.0
  max_new_tokens: int | None = None
  classes: tuple[int, ...] = ()
  steps: int | None = None
  sampler: str | None = None
  eta: float | None = None
  guidance: float | None = None
  out: str | None = None
  seed: int = 0


class Family(Protocol):
  """What the shared machinery needs from a kind of model (see the module docstring)."""

  kind: ClassVar[str]                 # the `model.kind` this family trains
  unit: ClassVar[str]                 # what costs are counted in: "token" or "sample"
  suites: ClassVar[tuple[str, ...]]   # benchmark suites of `scaling eval`; first: default
  cfg: ml_collections.ConfigDict
  ema_decay: float | None             # None: no weight average is kept

  @staticmethod
  def base_config() -> ml_collections.ConfigDict:
    """Every field of the family's config with its default: also the accepted schema."""

  def check(self) -> None:
    """Checks the family's sections (values, not devices); ConfigError naming the field."""

  def make_model(self, rngs: nnx.Rngs | None = None) -> nnx.Module:
    """The model; its parameters are created in their shards under an active mesh."""

  def params(self) -> ParamCounts: ...
  def flops_per_unit(self) -> float: ...
  def units_per_step(self) -> int: ...

  def load_data(self) -> Any:
    """Prepares (once, then from disk) and returns the training and held-out data."""

  def save_artifacts(self, data: Any, workdir: str) -> None:
    """Writes what sampling needs besides the config and checkpoints (a tokenizer)."""

  def load_artifacts(self, workdir: str) -> dict:
    """Reads what `save_artifacts` wrote."""

  def train_dataset(self, data: Any, process_index: int, process_count: int): ...
  def eval_batches(self, data: Any, process_index: int, process_count: int) -> Iterator: ...
  def synthetic_batch(self, rng) -> dict: ...
  def batch_sharding(self, mesh, rules) -> jax.sharding.NamedSharding: ...

  def optimizer(self) -> Any:
    """What `update` steps with; its `init(params)` makes the optimizer state."""

  def update(self, model_of, tx, params: nnx.State, opt_state, batch, key
             ) -> tuple[nnx.State, Any, dict[str, jax.Array]]:
    """One training step's new (params, opt_state) and metrics (at least `loss`, which
    must stay finite, and `grad_norm`). `model_of(params)` is the model."""
  def eval_sums(self, model, batch, key) -> dict: ...
  def eval_metrics(self, totals: dict[str, float]) -> dict[str, float]: ...

  def activations(self, model, batch, key) -> dict[str, jax.Array]:
    """Mean absolute activation of each layer on a batch (coordinate checks)."""

  def inference_devices(self, devices: list) -> list:
    """The devices a loaded run samples on (its batch is split over them)."""

  def check_eval(self, request: EvalRequest) -> None:
    """Checks an eval request before any training or loading (sweeps call it first)."""

  def evaluate(self, run, request: EvalRequest, *, progress: bool = True) -> dict:
    """Scores a loaded run; writes eval.json and returns its `tasks` part."""

  def sample(self, run, request: SampleRequest) -> list[str]:
    """Samples a loaded run; returns the lines to print."""


def gradient_update(loss_fn, tx: optax.GradientTransformation, params, opt_state):
  """One optimizer step down the gradient of `loss_fn(params)`."""
  loss, grads = jax.value_and_grad(loss_fn)(params)
  updates, opt_state = tx.update(grads, opt_state, params)
  return (optax.apply_updates(params, updates), opt_state,
          {"loss": loss, "grad_norm": optax.tree.norm(grads)})


class OneObjective:
  """For a family with one loss over all its parameters, `loss(model, batch, key)`, and one
  optimizer (with muP's per-parameter learning rates where the config asks for them)."""

  def optimizer(self) -> optax.GradientTransformation:
    return optim.for_model(self.cfg, self.make_model)

  def update(self, model_of, tx, params, opt_state, batch, key):
    return gradient_update(lambda p: self.loss(model_of(p), batch, key), tx, params,
                           opt_state)


@contextlib.contextmanager
def eager_sharding():
  """Parameters are created in their shards under a mesh; outside one there is nothing
  to shard onto, so they keep their logical names and live on one device."""
  with nnx.use_eager_sharding(not jax.sharding.get_abstract_mesh().empty):
    yield


def checkpoint_section() -> dict:
  """The `checkpoint` section every family's base config shares, with its defaults."""
  return dict(
      every_steps=1_000, max_to_keep=2, async_save=True,
      keep_steps=(),           # also save and keep these (checkpoint evals, branches)
      preemption_check_every=10,  # multi-process runs agree on SIGTERM this often
  )


def check_transformer(m) -> None:
  """The checks every transformer config (`model` section) must pass."""
  for field in ("d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff"):
    require(m[field] > 0, f"model.{field}", f"must be positive, got {m[field]}")
  require(m.d_model % m.n_heads == 0, "model.d_model",
          f"d_model={m.d_model} is not divisible by n_heads={m.n_heads}")
  require((m.d_model // m.n_heads) % 2 == 0, "model.d_model",
          f"head dim d_model/n_heads={m.d_model // m.n_heads} must be even for rotary embedding")
  require(m.n_heads % m.n_kv_heads == 0, "model.n_kv_heads",
          f"n_heads={m.n_heads} is not divisible by n_kv_heads={m.n_kv_heads}")
  require(m.mlp in ("gelu", "swiglu"), "model.mlp", f"unknown {m.mlp!r}; choose gelu or swiglu")
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
  require(t.schedule in optim.SCHEDULES, "train.schedule",
          f"unknown {t.schedule!r}; choose from {', '.join(optim.SCHEDULES)}")
  require(t.optimizer in optim.OPTIMIZERS, "train.optimizer",
          f"unknown {t.optimizer!r}; choose from {', '.join(optim.OPTIMIZERS)}")
  require(t.log_every > 0, "train.log_every", f"must be positive, got {t.log_every}")
  require(cfg.eval.batch_size > 0, "eval.batch_size", "must be positive")
  require(cfg.checkpoint.max_to_keep > 0, "checkpoint.max_to_keep", "must be positive")
