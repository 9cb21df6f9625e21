"""Sampling a trained video DiT: `scaling sample` writes clips as a PNG strip (one row per
clip, its frames left to right) and an animated GIF of the same grid."""

from __future__ import annotations

import os

import numpy as np

from scaling.errors import RequestError
from scaling.generate import image_sampling
from scaling.generate.image_sampling import inference_devices, load_artifacts
from scaling.generate.request import SampleRequest

__all__ = ["generate", "inference_devices", "load_artifacts", "sample"]


def generate(run, labels, settings: image_sampling.SamplerSettings, *, seed: int = 0,
             batch: int = 64) -> np.ndarray:
  """One clip per label, float32 in [-1, 1], [N, F, H, W, C] on the host."""
  d = run.cfg.data
  return image_sampling.generate(run, labels, settings, seed=seed, batch=batch,
                                 shape=(d.frames, d.canvas, d.canvas, d.channels))


def save_gif(clips_NFHWC: np.ndarray, path: str, scale: int = 4, ms_per_frame: int = 150):
  """The clips side by side as one looping animated GIF."""
  from PIL import Image
  frames = []
  for f in range(clips_NFHWC.shape[1]):
    tiles = image_sampling.grid(clips_NFHWC[:, f], columns=min(len(clips_NFHWC), 8))
    pixels = np.round(tiles[..., 0] * 255).astype(np.uint8)
    frames.append(Image.fromarray(pixels.repeat(scale, 0).repeat(scale, 1)))
  frames[0].save(path, save_all=True, append_images=frames[1:], duration=ms_per_frame,
                 loop=0)


def sample(run, request: SampleRequest) -> list[str]:
  """`n` clips of each requested class (default: of every class): a PNG strip and a GIF."""
  if request.prompts:
    raise RequestError("prompts", f"{run.workdir} holds a video model: give classes, "
                       "not {field}")
  settings = image_sampling.SamplerSettings.from_config(
      run.cfg.diffusion, steps=request.steps, method=request.sampler, eta=request.eta,
      guidance=request.guidance)
  image_sampling.check_settings(run, settings)
  n = request.count(default=2)
  classes = list(request.classes) or list(range(run.cfg.data.num_classes))
  labels = image_sampling.check_labels(np.repeat(classes, n), run.cfg.data.num_classes)
  tag = f"{settings.method}{settings.steps}-guidance{settings.guidance:g}"
  path = request.out or os.path.join(
      run.workdir, "samples",
      f"class{'-'.join(map(str, classes)) if request.classes else 'all'}-{tag}"
      f"-seed{request.seed}.png")
  image_sampling.check_output(path)
  clips = generate(run, labels, settings, seed=request.seed)
  frames = clips.shape[1]
  image_sampling.save_grid(clips.reshape(-1, *clips.shape[2:]), path, columns=frames)
  gif = f"{path[:-len('.png')]}.gif"
  save_gif(clips, gif)
  return [f"wrote {len(clips)} clips of {frames} frames ({settings.method}, {settings.steps} "
          f"steps, guidance {settings.guidance:g}) to {path} and {gif}"]
