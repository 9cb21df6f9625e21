"""Sampling a trained diffusion transformer: `scaling sample`'s PNG grid of classes, drawn
with DDIM or DDPM and guidance (`scaling.generate.image_sampling`)."""

from __future__ import annotations

from scaling.generate import image_sampling
from scaling.generate.image_sampling import inference_devices, load_artifacts
from scaling.generate.request import SampleRequest

__all__ = ["inference_devices", "load_artifacts", "sample"]


def sample(run, request: SampleRequest) -> list[str]:
  """`n` images of each requested class (default: of every class), as one PNG grid."""
  settings = image_sampling.SamplerSettings.from_config(
      run.cfg.diffusion, steps=request.steps, method=request.sampler, eta=request.eta,
      guidance=request.guidance)
  image_sampling.check_settings(run, settings)
  return image_sampling.sample_grid(
      run, request, lambda labels: image_sampling.generate(run, labels, settings,
                                                           seed=request.seed),
      f"{settings.method}{settings.steps}-guidance{settings.guidance:g}",
      f"{settings.method}, {settings.steps} steps, guidance {settings.guidance:g}")
