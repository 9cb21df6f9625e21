"""What every image family shares: the `data` section, class-labelled image sets written
once as array_record and read through grain (`scaling.data.image_sets`), batches split over
the batch axis only, samplers that split their batch over every device, the checks of an
eval request, and `scaling sample`'s PNG grid of classes."""

from __future__ import annotations

import os
from typing import Callable, Iterator

import jax
import numpy as np

from scaling import mesh as mesh_lib
from scaling.data import image_sets
from scaling.errors import UserError
from scaling.generate import image_sampling


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

  def load_artifacts(self, workdir: str) -> dict:
    del workdir
    return {}

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

  def batch_sharding(self, mesh, rules) -> jax.sharding.NamedSharding:
    # Only the leading (batch) axis is split, so one sharding fits images and labels.
    return mesh_lib.batch_sharding(mesh, rules, ndim=1)

  def inference_devices(self, devices: list) -> list:
    return devices  # image samplers split their batch over every device

  def check_image_eval(self, request) -> None:
    """The checks of an eval request that hold for every image family."""
    request.check()
    other = [s for s in (request.suites or ()) if s not in self.suites]
    if other or request.task_files:
      raise UserError(f"an image model's suite is 'images', not "
                      f"{', '.join([*other, *request.task_files])}")
    if request.n is not None and request.n < 2:
      raise UserError(f"-n must be at least 2 images per class for image metrics, "
                      f"got {request.n}")

  def sample_grid(self, run, request, draw: Callable[[np.ndarray], np.ndarray], tag: str,
                  what: str) -> list[str]:
    """`n` images of each requested class (default: of every class) as one PNG grid, one
    row per class when there are several. `draw(labels)` makes the images; `tag` goes in
    the default file name, `what` in the line returned."""
    if request.prompts:
      raise UserError(f"{run.workdir} holds an image model: use --class, not prompts")
    n = 16 if request.n is None else request.n
    if n < 1:
      raise UserError(f"-n must be at least 1, got {n}")
    classes = list(request.classes) or list(range(run.cfg.data.num_classes))
    labels = image_sampling.check_labels(np.repeat(classes, n), run.cfg.data.num_classes)
    path = request.out or os.path.join(
        run.workdir, "samples",
        f"class{'-'.join(map(str, classes)) if request.classes else 'all'}-{tag}"
        f"-seed{request.seed}.png")
    image_sampling.check_output(path)
    out = draw(labels)
    image_sampling.save_grid(out, path, columns=n if len(classes) > 1 else None)
    return [f"wrote {len(out)} images ({what}) to {path}"]
