"""Sampling a trained video DiT: `scaling sample` writes clips as a PNG strip (one row per
clip, its frames left to right) and an animated GIF of the same grid. With `--continue N`
it draws the last N frames of held-out clips given their first ones (inpainting along
time with the same model), each row of continuations under the true clip."""

from __future__ import annotations

import os

import numpy as np

from scaling.data import moving_digits
from scaling.errors import RequestError
from scaling.families.video import clip_config
from scaling.generate import image_sampling
from scaling.generate.image_sampling import inference_devices, load_artifacts
from scaling.generate.request import SampleRequest

__all__ = ["continue_clips", "generate", "inference_devices", "load_artifacts", "sample"]


def generate(run, labels, settings: image_sampling.SamplerSettings, *, seed: int = 0,
             batch: int = 64) -> np.ndarray:
  """One clip per label, float32 in [-1, 1], [N, F, H, W, C] on the host."""
  d = run.cfg.data
  return image_sampling.generate(run, labels, settings, seed=seed, batch=batch,
                                 shape=(d.frames, d.canvas, d.canvas, d.channels))


def check_continuation(frames: int, n_new: int) -> None:
  if not 1 <= n_new < frames:
    raise RequestError("continue_frames", f"{{field}} {n_new} does not fit the model's "
                       f"{frames}-frame clips: a continuation draws 1 to {frames - 1} frames "
                       "after the given ones")


def continue_clips(run, clips_NFHWC: np.ndarray, labels, n_new: int,
                   settings: image_sampling.SamplerSettings, *, seed: int = 0,
                   batch: int = 64) -> np.ndarray:
  """The clips with their last `n_new` frames drawn by the model given the others."""
  frames = run.cfg.data.frames
  check_continuation(frames, n_new)
  mask_NF111 = np.zeros((len(clips_NFHWC), frames, 1, 1, 1), np.float32)
  mask_NF111[:, :frames - n_new] = 1
  d = run.cfg.data
  return image_sampling.generate(run, labels, settings, seed=seed, batch=batch,
                                 shape=(frames, d.canvas, d.canvas, d.channels),
                                 known=(clips_NFHWC, mask_NF111))


def held_out_clips(run, classes, n: int):
  """The first `n` held-out clips of each class, with their labels."""
  d = run.cfg.data
  held_out = moving_digits.load("test", clip_config(d), d.data_dir or None)
  index = np.concatenate([np.flatnonzero(held_out.labels_N == c)[:n] for c in classes])
  return held_out.videos_NFHWC[index], held_out.labels_N[index]


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
  if request.continue_frames is not None:
    check_continuation(run.cfg.data.frames, request.continue_frames)
  n = request.count(default=2)
  classes = list(request.classes) or list(range(run.cfg.data.num_classes))
  labels = image_sampling.check_labels(np.repeat(classes, n), run.cfg.data.num_classes)
  tag = f"{settings.method}{settings.steps}-guidance{settings.guidance:g}"
  if request.continue_frames:
    tag = f"continue{request.continue_frames}-{tag}"
  path = request.out or os.path.join(
      run.workdir, "samples",
      f"class{'-'.join(map(str, classes)) if request.classes else 'all'}-{tag}"
      f"-seed{request.seed}.png")
  image_sampling.check_output(path)
  if request.continue_frames:
    truth, labels = held_out_clips(run, classes, n)
    drawn = continue_clips(run, truth, labels, request.continue_frames, settings,
                           seed=request.seed)
    clips = np.stack([truth, drawn], axis=1).reshape(-1, *truth.shape[1:])
    what = (f"{len(drawn)} held-out clips and their last {request.continue_frames} frames "
            "drawn (rows: true, drawn)")
  else:
    clips = generate(run, labels, settings, seed=request.seed)
    what = f"{len(clips)} clips"
  frames = clips.shape[1]
  image_sampling.save_grid(clips.reshape(-1, *clips.shape[2:]), path, columns=frames)
  gif = f"{path[:-len('.png')]}.gif"
  save_gif(clips, gif)
  return [f"wrote {what} of {frames} frames ({settings.method}, {settings.steps} "
          f"steps, guidance {settings.guidance:g}) to {path} and {gif}"]
