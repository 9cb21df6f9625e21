"""Where things live in a run directory; every stage that reads or writes one names its
files through this module.

    config.json        the resolved config (its content hash names the run)
    metrics.jsonl      one JSON object per logged step
    tensorboard/       the same scalars as TensorBoard events
    checkpoints/       orbax checkpoints (state + data iterator), one folder per step
    tokenizer.model    the SentencePiece model (language models)
    summary.json       how the run ended and what it cost
    eval.json          benchmark scores of the final checkpoint
    evals/step-N.json  benchmark scores of intermediate checkpoints
"""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class RunDir:
  path: str

  def _file(self, name: str) -> str:
    return os.path.join(self.path, name)

  @property
  def config(self) -> str:
    return self._file("config.json")

  @property
  def metrics(self) -> str:
    return self._file("metrics.jsonl")

  @property
  def tensorboard(self) -> str:
    return self._file("tensorboard")

  @property
  def checkpoints(self) -> str:
    return self._file("checkpoints")

  @property
  def unreadable_checkpoints(self) -> str:
    """Where checkpoints that cannot be restored are moved (kept, never deleted)."""
    return self._file("checkpoints.unreadable")

  @property
  def tokenizer(self) -> str:
    return self._file("tokenizer.model")

  @property
  def profile(self) -> str:
    return self._file("profile")

  @property
  def summary(self) -> str:
    return self._file("summary.json")

  @property
  def eval(self) -> str:
    return self._file("eval.json")

  @property
  def evals(self) -> str:
    return self._file("evals")

  def eval_at(self, step: int) -> str:
    """The scores of the checkpoint at `step` (intermediate checkpoint evals)."""
    return os.path.join(self.evals, f"step-{step}.json")
