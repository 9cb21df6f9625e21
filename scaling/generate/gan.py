"""Sampling a trained GAN: one pass of the (EMA) generator per image."""

from __future__ import annotations

import numpy as np

from scaling.generate import image_sampling
from scaling.generate.image_sampling import inference_devices, load_artifacts
from scaling.generate.request import SampleRequest

__all__ = ["SETTING", "generate", "inference_devices", "load_artifacts", "sample"]

SETTING = "generator"  # the one way a GAN draws: its subset in eval.json
NOT_FOR_GANS = "does not apply: a GAN draws each image in one pass"


def generate(run, labels, setting=SETTING, *, seed: int = 0, batch: int = 256) -> np.ndarray:
  """One image per label from the generator; the latents of batch `i` come from
  `fold_in(key(seed), i)`, so the images do not depend on how the batch is split."""
  del setting  # a GAN has one way to draw
  return image_sampling.draw_batches(
      run, labels, lambda model, key, labels_B: model.generator(
          model.latents(key, labels_B.shape[0]), labels_B), SETTING, seed=seed, batch=batch)


def sample(run, request: SampleRequest) -> list[str]:
  """`n` images of each requested class (default: of every class), as one PNG grid."""
  request.unset(("sampler", "steps", "guidance", "eta"), NOT_FOR_GANS)
  return image_sampling.sample_grid(
      run, request, lambda labels: generate(run, labels, seed=request.seed), "gan",
      "generator")
