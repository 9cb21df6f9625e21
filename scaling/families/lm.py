"""The language-model family: a decoder-only transformer trained on next-token prediction."""

from __future__ import annotations

import os
from typing import Any, Iterator

import jax
import numpy as np
from flax import nnx

from scaling import mesh as mesh_lib
from scaling.data import builders, pipeline
from scaling.models import counting
from scaling.train import objectives
from scaling.train.state import make_model


class LMFamily:
  """Next-token prediction on tokenized text or task examples; costs counted per token."""

  unit = "token"
  ema_decay = None  # no weight averaging

  def __init__(self, cfg):
    self.cfg = cfg
    self.vocab_size = cfg.data.vocab_size

  def make_model(self) -> nnx.Module:
    return make_model(self.cfg.model, self.vocab_size, self.cfg.seed)

  def params(self) -> counting.ParamCounts:
    return counting.lm_params(self.cfg.model, self.vocab_size)

  def flops_per_unit(self) -> float:
    return counting.lm_flops_per_token(self.cfg.model, self.vocab_size, self.cfg.data.seq_len)

  def units_per_step(self) -> int:
    return self.cfg.train.batch_size * self.cfg.data.seq_len

  def load_data(self) -> dict[str, Any]:
    """Prepares the dataset and tokenizer if needed; returns the tokenized splits."""
    d = self.cfg.data
    prepared = builders.prepare(d, d.data_dir or None)
    splits = {split: pipeline.load_split(prepared, split, d.seq_len, d.loss_on)
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

  def batch_sharding(self, mesh, rules) -> jax.sharding.NamedSharding:
    return mesh_lib.batch_sharding(mesh, rules)

  @staticmethod
  def _logits(model, batch):
    # Packed rows carry document boundaries; task rows are one document each.
    return model(batch["inputs"], batch.get("positions"), batch.get("segment_ids"))

  def loss(self, model, batch, key) -> jax.Array:
    del key  # The LM objective is deterministic given the batch.
    return objectives.lm_loss(self._logits(model, batch), batch["targets"], batch["loss_mask"])

  def eval_sums(self, model, batch, key) -> dict:
    del key
    return objectives.lm_eval_sums(self._logits(model, batch), batch["targets"],
                                   batch["loss_mask"])

  @staticmethod
  def eval_metrics(totals: dict[str, float]) -> dict[str, float]:
    """Teacher-forced loss, token accuracy and exact match over the held-out split."""
    return {
        "eval_loss": totals["nll"] / max(totals["tokens"], 1),
        "eval_token_accuracy": totals["correct_tokens"] / max(totals["tokens"], 1),
        "eval_exact_match": totals["exact"] / max(totals["examples"], 1),
        "eval_examples": totals["examples"],
    }
