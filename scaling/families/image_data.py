"""What every image family shares: the `data` section and class-labelled image sets written
once as array_record and read through grain (`scaling.data.image_sets`)."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from scaling.data import image_sets


def data_section() -> dict:
  """The `data` section every image family's base config shares, with its defaults."""
  return dict(
      kind="images",
      name="digits",           # digits | mnist | cifar10
      image_size=8,            # images are resized to image_size x image_size
      channels=1,
      num_classes=10,
      data_dir="",             # "" = $SCALING_DATA_DIR or ~/.cache/scaling/data
      seed=0,                  # example order; shared by every model size
  )


class ImageData:
  """Mixin for families whose config has an image `data` section (`self.cfg`)."""

  def load_data(self) -> dict:
    """The train split and the held-out split (written once, then read from disk)."""
    return {"train": image_sets.load(self.cfg.data, "train"),
            "eval": image_sets.load(self.cfg.data, "test")}

  def save_artifacts(self, data: dict, workdir: str) -> None:
    del data, workdir  # Images need no tokenizer; the config says everything else.

  def train_dataset(self, data: dict, process_index: int, process_count: int):
    return image_sets.train_dataset(data["train"], global_batch=self.cfg.train.batch_size,
                                    seed=self.cfg.data.seed, process_index=process_index,
                                    process_count=process_count)

  def eval_batches(self, data: dict, process_index: int, process_count: int) -> Iterator:
    e = self.cfg.eval
    return image_sets.eval_batches(data["eval"], global_batch=e.batch_size,
                                   max_examples=e.max_examples, process_index=process_index,
                                   process_count=process_count)

  def synthetic_batch(self, rng) -> dict:
    """A global batch of random images and labels, shaped like the real ones (benchmarks)."""
    d, B = self.cfg.data, self.cfg.train.batch_size
    pixels = rng.uniform(-1, 1, (B, d.image_size, d.image_size, d.channels))
    return {"images": pixels.astype(np.float32),
            "labels": rng.integers(0, d.num_classes, B).astype(np.int32)}
