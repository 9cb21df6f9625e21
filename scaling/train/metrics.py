"""Metric writers: one JSON object per logged step, mirrored to TensorBoard."""

from __future__ import annotations

import json
import math
import os

from tensorboardX import SummaryWriter


def _plain(value):
  value = float(value)
  return value if math.isfinite(value) else str(value)  # JSON has no NaN or inf


class MetricWriter:
  """Appends to `metrics.jsonl` and writes TensorBoard scalars (process 0 only)."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.enabled = enabled
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb = SummaryWriter(os.path.join(workdir, "tensorboard")) if enabled else None

  def truncate_after(self, step: int) -> None:
    """Drops records past `step`: a resumed run logs those steps again."""
    if not self.enabled or not os.path.exists(self.path):
      return
    with open(self.path) as f:
      kept = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
    with open(self.path, "w") as f:
      f.writelines(kept)

  def write(self, step: int, metrics: dict) -> None:
    if not self.enabled:
      return
    record = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    for k, v in metrics.items():
      if math.isfinite(float(v)):
        self._tb.add_scalar(k, float(v), int(step))

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()

