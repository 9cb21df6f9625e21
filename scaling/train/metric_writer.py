"""Writes the training metrics: one JSON object per logged step, mirrored to TensorBoard.

A resumed run continues from its checkpoint's step: records after that step (logged
before a kill) are dropped from `metrics.jsonl` and purged from TensorBoard, so every
step is recorded once and the file equals an uninterrupted run's.
"""

from __future__ import annotations

import json
import math

from tensorboardX import SummaryWriter

from scaling import files


def _plain(value):
  value = float(value)
  return value if math.isfinite(value) else str(value)  # JSON has no NaN or inf


class MetricWriter:
  """Appends to `metrics.jsonl` and writes TensorBoard scalars (process 0 only)."""

  def __init__(self, metrics_path: str, tensorboard_dir: str, *, resume_step: int,
               enabled: bool = True):
    """`resume_step`: the step training continues from (0 for a fresh run)."""
    self.enabled = enabled
    self.path, self.tensorboard_dir = metrics_path, tensorboard_dir
    self.records: list[dict] = []
    self._tb = None
    if not enabled:
      return
    records = files.read_jsonl(metrics_path)
    kept = [r for r in records if r["step"] <= resume_step]
    if len(kept) < len(records):
      files.write_atomic(metrics_path, "".join(json.dumps(r) + "\n" for r in kept))
    self.records = kept
    self._tb = SummaryWriter(tensorboard_dir, purge_step=resume_step + 1)

  def __enter__(self) -> "MetricWriter":
    return self

  def __exit__(self, exc_type, exc, tb) -> None:
    if exc_type is None:
      self.close()
      return
    try:  # an error is on its way already (a full disk fails this close too): keep it
      self.close()
    except OSError:
      pass

  def last(self) -> dict:
    """The latest record's metrics (without its step): what a resumed run ended with."""
    record = dict(self.records[-1]) if self.records else {}
    record.pop("step", None)
    return record

  def write(self, step: int, metrics: dict) -> None:
    if not self.enabled:
      return
    record = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    self.records.append(record)
    for k, v in metrics.items():
      if math.isfinite(float(v)):
        self._tb.add_scalar(k, float(v), int(step))

  def close(self) -> None:
    if self._tb is not None:
      tb, self._tb = self._tb, None
      try:
        tb.close()
      except OSError as e:  # the events could not be flushed: name where
        raise OSError(e.errno, e.strerror, self.tensorboard_dir) from None
