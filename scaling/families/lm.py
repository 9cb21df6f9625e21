"""The language-model family: a decoder-only transformer trained on next-token prediction.

Data are generated task problems (arithmetic, letter-string and word analogies, programs
from input/output examples) and natural-text corpora (`scaling.data`); costs are counted
per token. A trained run is sampled by `scaling.generate.lm` and scored by
`scaling.evals.lm`.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from scaling import mesh as mesh_lib
from scaling.config import require
from scaling.data import builders, corpora, pipeline
from scaling.data.tasks import analogy, arithmetic, mixture, programs
from scaling.families import base
from scaling.models import counting
from scaling.models.lm import LM


def base_config() -> ml_collections.ConfigDict:
  """Every field of an LM config with its default (a ~117k-parameter model on 3-digit
  addition); presets in `configs/lm/` start from here."""
  return ml_collections.ConfigDict(dict(
      name="lm",
      seed=0,                      # parameter initialisation
      model=dict(
          kind="lm",
          d_model=64, n_layers=2, n_heads=4,
          n_kv_heads=4,            # fewer than n_heads = grouped-query attention
          d_ff=256,
          mlp="gelu",              # gelu | swiglu | none (attention-only blocks)
          tie_embeddings=True,
          rope_base=10_000.0,
          norm_eps=1e-6,
          dtype="float32",         # compute dtype; parameters are always float32
          attention="xla",         # xla | cudnn (GPU, bfloat16)
          scan_layers=False,       # one lax.scan over layers (compile time independent of depth)
          remat="none",            # none | full | dots_saveable
          parametrization="sp",    # sp | mup (see scaling.optim.lr_scales)
          base_width=64,           # mup: the d_model the hyperparameters were tuned at
      ),
      mesh=dict(data=-1, fsdp=1, tensor=1, rules=mesh_lib.DEFAULT_RULES),
      data=dict(
          # (source, weight): a task generator or `text:<tfds name>`.
          mixture=(("arithmetic", 1.0),),
          ops=("+",),
          min_digits=3,
          max_digits=3,
          reverse_answer=True,     # least-significant digit first, as the model adds
          letter_levels=("basic",),
          word_levels=("basic",),
          # program: reference trees of these levels (see scaling.data.tasks.programs),
          # functions of these arities, prompt + answer at most this many characters
          program_levels=("depth1", "depth2", "depth3", "cond"),
          program_arities=(1, 2),
          program_max_chars=64,
          eval_fraction=0.02,      # share of all problems held out; decided by hash
          num_train=200_000,       # with text: packed rows of seq_len tokens
          num_eval=2_000,          # per task; with text: packed held-out rows
          seq_len=16,
          loss_on="answer",        # task examples: answer | all (text: every token)
          pack=False,              # task examples several to a training row (text: always)
          vocab_size=288,
          data_dir="",             # "" = $SCALING_DATA_DIR or ~/.cache/scaling/data
          seed=0,                  # problems and their order; shared by every model size
      ),
      train=base.train_section(steps=1_500, learning_rate=3e-3, weight_decay=0.1),
      eval=dict(every_steps=500, batch_size=256, max_examples=2_000),
      checkpoint=base.checkpoint_section(),
  ))


def _check_data(d) -> None:
  require(len(d.mixture) > 0, "data.mixture", "needs at least one (source, weight) pair")
  for entry in d.mixture:
    require(len(entry) == 2 and (entry[0] in mixture.TASKS or corpora.is_text(entry[0])),
            "data.mixture", f"entries are (source, weight) with source one of "
            f"{mixture.TASKS} or 'text:<tfds name>', got {entry!r}")
    require(entry[1] > 0, "data.mixture", f"weights must be positive, got {entry!r}")
  require(all(level in analogy.LEVELS for level in d.letter_levels), "data.letter_levels",
          f"known levels: {', '.join(analogy.LEVELS)}; got {d.letter_levels}")
  require(all(level in analogy.WORD_LEVELS for level in d.word_levels), "data.word_levels",
          f"known levels: {', '.join(analogy.WORD_LEVELS)}; got {d.word_levels}")
  require(len(d.program_levels) > 0 and all(level in programs.LEVELS
                                            for level in d.program_levels),
          "data.program_levels", f"must be a non-empty subset of {programs.LEVELS}, got "
          f"{d.program_levels}")
  require(len(d.program_arities) > 0 and all(a in programs.ARITIES
                                             for a in d.program_arities),
          "data.program_arities", f"must be a non-empty subset of {programs.ARITIES}, got "
          f"{d.program_arities}")
  # Two examples `f(d)=v;`, the header and an answer take at least 20 characters, and
  # below 24 so few problems fit that drawing them takes minutes.
  require(d.program_max_chars >= 24, "data.program_max_chars",
          f"must be at least 24, got {d.program_max_chars}")
  require(all(op in arithmetic.OPS for op in d.ops) and len(d.ops) > 0, "data.ops",
          f"must be a non-empty subset of {arithmetic.OPS}, got {d.ops}")
  require(1 <= d.min_digits <= d.max_digits, "data.min_digits",
          f"need 1 <= min_digits <= max_digits, got {d.min_digits}, {d.max_digits}")
  require(0 < d.eval_fraction < 1, "data.eval_fraction", f"must be in (0, 1), got {d.eval_fraction}")
  require(d.loss_on in ("answer", "all"), "data.loss_on", f"unknown {d.loss_on!r}; choose answer or all")
  require(d.num_train > 0 and d.num_eval > 0, "data.num_train", "split sizes must be positive")
  require(d.seq_len > 1, "data.seq_len", f"must be at least 2, got {d.seq_len}")
  question, answer = arithmetic.max_chars(tuple(d.ops), d.max_digits)
  needed = question + answer + 1  # bos + question + answer + eos, minus the shifted-out token
  # Analogy lengths depend on the tokenizer; the tokenizing step checks those.
  require(d.seq_len >= needed or "arithmetic" not in dict(d.mixture), "data.seq_len",
          f"seq_len={d.seq_len} is too short for {d.max_digits}-digit problems (needs {needed})")
  # Every character of a program text is at most one token (each is in the tokenizer's
  # training text), so the character budget bounds the tokens.
  needed = d.program_max_chars + 1
  require(d.seq_len >= needed or "program" not in dict(d.mixture), "data.seq_len",
          f"seq_len={d.seq_len} is too short for programs of up to {d.program_max_chars} "
          f"characters (needs {needed}; or lower data.program_max_chars)")


def lm_loss_terms(logits_BLV: jax.Array, targets_BL: jax.Array, mask_BL: jax.Array):
  """Next-token cross-entropy summed over the masked positions, and their count."""
  nll_BL = optax.softmax_cross_entropy_with_integer_labels(logits_BLV, targets_BL)
  return (nll_BL * mask_BL).sum(), mask_BL.sum()


def lm_loss(logits_BLV: jax.Array, targets_BL: jax.Array, mask_BL: jax.Array):
  """Mean next-token cross-entropy over the masked positions of the whole batch."""
  total, n_tokens = lm_loss_terms(logits_BLV, targets_BL, mask_BL)
  return total / jnp.maximum(n_tokens, 1.0)


def lm_eval_sums(logits_BLV: jax.Array, targets_BL: jax.Array, mask_BL: jax.Array):
  """Sums over a batch, to be added up across batches and divided at the end.

  `exact`: examples whose every masked target is the argmax, i.e. what greedy decoding
  would produce under teacher forcing.
  """
  nll_BL = optax.softmax_cross_entropy_with_integer_labels(logits_BLV, targets_BL)
  correct_BL = (logits_BLV.argmax(-1) == targets_BL) | (mask_BL == 0)
  has_target_B = mask_BL.sum(-1) > 0
  return {
      "nll": (nll_BL * mask_BL).sum(),
      "tokens": mask_BL.sum(),
      "correct_tokens": ((logits_BLV.argmax(-1) == targets_BL) * mask_BL).sum(),
      "exact": (correct_BL.all(-1) & has_target_B).sum(),
      "examples": has_target_B.sum(),
  }


class LMFamily(base.OneObjective):
  """Next-token prediction on tokenized text or task examples; costs counted per token."""

  kind = "lm"
  unit = "token"
  ema_decay = None  # no weight averaging
  base_config = staticmethod(base_config)

  def __init__(self, cfg):
    self.cfg = cfg
    self.vocab_size = cfg.data.vocab_size

  def check(self) -> None:
    self.check_model()
    _check_data(self.cfg.data)

  def check_model(self) -> None:
    m = self.cfg.model
    base.check_transformer(m, mlps=("gelu", "swiglu", "none"))
    # A tied readout is the input embedding, whose init muP keeps constant; under the
    # readout multiplier its logits would then vanish as the model widens.
    require(m.parametrization != "mup" or not m.tie_embeddings, "model.tie_embeddings",
            "muP needs an untied output head (tie_embeddings=False)")

  def make_model(self, rngs: nnx.Rngs | None = None) -> nnx.Module:
    with base.eager_sharding():
      return LM(self.cfg.model, self.vocab_size, rngs=rngs or nnx.Rngs(params=self.cfg.seed))

  def params(self) -> counting.ParamCounts:
    return counting.lm_params(self.cfg.model, self.vocab_size)

  def flops_per_unit(self) -> float:
    return counting.lm_flops_per_token(self.cfg.model, self.vocab_size, self.cfg.data.seq_len)

  def units_per_step(self) -> int:
    return self.cfg.train.batch_size * self.cfg.data.seq_len

  # --- data ---------------------------------------------------------------------------

  def load_data(self) -> dict[str, Any]:
    """Prepares the dataset and tokenizer if needed; returns the tokenized splits."""
    d = self.cfg.data
    prepared = builders.prepare(d, d.data_dir or None)
    splits = {split: pipeline.load_split(prepared, split, d.seq_len, d.loss_on, d.pack)
              for split in ("train", "eval")}
    return {"tokenizer": prepared.tokenizer, **splits}

  def save_artifacts(self, data: dict, workdir: str) -> None:
    data["tokenizer"].save(os.path.join(workdir, "tokenizer.model"))

  def train_dataset(self, data: dict, process_index: int, process_count: int):
    return pipeline.train_dataset(
        data["train"], global_batch=self.cfg.train.batch_size, seed=self.cfg.data.seed,
        process_index=process_index, process_count=process_count)

  def eval_batches(self, data: dict, process_index: int, process_count: int) -> Iterator:
    e = self.cfg.eval
    return pipeline.eval_batches(data["eval"], global_batch=e.batch_size,
                                 max_examples=e.max_examples, process_index=process_index,
                                 process_count=process_count)

  def synthetic_batch(self, rng) -> dict:
    """A global batch of random tokens, shaped like the real ones (for benchmarks)."""
    B, L = self.cfg.train.batch_size, self.cfg.data.seq_len
    tokens = rng.integers(4, self.vocab_size, (B, L + 1)).astype(np.int32)
    return {"inputs": tokens[:, :-1], "targets": tokens[:, 1:],
            "loss_mask": np.ones((B, L), np.float32)}

  # --- objective ----------------------------------------------------------------------

  @staticmethod
  def _logits(model, batch):
    # Packed rows carry document boundaries; task rows are one document each.
    return model(batch["inputs"], batch.get("positions"), batch.get("segment_ids"))

  def loss_terms(self, model, batch, key) -> tuple[jax.Array, jax.Array]:
    del key  # The LM objective is deterministic given the batch.
    return lm_loss_terms(self._logits(model, batch), batch["targets"], batch["loss_mask"])

  def eval_sums(self, model, batch, key) -> dict:
    del key
    return lm_eval_sums(self._logits(model, batch), batch["targets"], batch["loss_mask"])

  @staticmethod
  def eval_metrics(totals: dict[str, float]) -> dict[str, float]:
    """Teacher-forced loss, token accuracy and exact match over the held-out split."""
    return {
        "eval_loss": totals["nll"] / max(totals["tokens"], 1),
        "eval_token_accuracy": totals["correct_tokens"] / max(totals["tokens"], 1),
        "eval_exact_match": totals["exact"] / max(totals["examples"], 1),
        "eval_examples": totals["examples"],
    }

  def activations(self, model, batch, key) -> dict[str, jax.Array]:
    del key
    return model.activations(batch["inputs"])
