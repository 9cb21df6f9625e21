"""Evaluating a trained video DiT: how well its sampled clips follow the law of motion the
training clips obey, beside the held-out clips themselves (the ceiling), and the held-out
denoising error at the config's fixed noise levels.

`motion/<setting>`: per sampled clip, `motion_residual` (pixels: the RMS distance of its
centre of mass from the best constant-velocity path with bounces, 0 for a clip that obeys
the law) and `concentration` (the share of each frame's brightness in a digit-sized window
on its centre of mass: near 1 for one digit, about the window's share of the canvas for
noise, whose barely moving centre would otherwise pass as a static digit); `motion/real`
scores the held-out clips the same way. Temporal metrics beyond the path (identity kept
across frames, a clip-level Frechet distance) and per-frame image quality are not measured
yet.
"""

from __future__ import annotations

import numpy as np

from scaling.data import moving_digits
from scaling.errors import RequestError
from scaling.evals import aggregate, dit as dit_eval, metrics
from scaling.evals.request import EvalRequest
from scaling.families.video import clip_config
from scaling.generate import image_sampling, video

SUITES = ("clips",)
DEFAULT_N = 10  # clips per class when -n is not given


def check(cfg, request: EvalRequest) -> None:
  del cfg
  request.check()
  request.unset(("task_files",), "is for language models, not a video model")
  request.unset(("samplers", "steps", "guidance"), "is not taken by a video model's eval: "
                "it samples with the config's diffusion settings")
  for name in request.suites or ():
    if name not in SUITES:
      raise RequestError("suites", f"unknown suite {name!r} for a video model; known: "
                         f"{', '.join(SUITES)}")


def _motion_row(clips_NFHWC: np.ndarray, digit_size: int) -> dict:
  frames = (clips_NFHWC[..., 0] + 1) * 127.5  # pixel brightness, for the centre of mass
  residuals = [moving_digits.motion_residual(c, digit_size) for c in frames]
  concentrated = [moving_digits.concentration(c, digit_size) for c in frames]
  return {"n": len(residuals), "chance": {},
          "metrics": {"motion_residual": metrics.summarize(residuals),
                      "concentration": metrics.summarize(concentrated)}}


def evaluate(run, request: EvalRequest, *, progress: bool = True) -> dict:
  """Scores `n` sampled clips per class (default 10) and the held-out clips."""
  del progress
  check(run.cfg, request)
  d = run.cfg.data
  settings = image_sampling.SamplerSettings.from_config(run.cfg.diffusion)
  image_sampling.check_settings(run, settings)
  n = request.n or DEFAULT_N
  labels = np.repeat(np.arange(d.num_classes), n)
  sampled = video.generate(run, labels, settings, seed=request.seed, batch=request.batch)
  held_out = moving_digits.load("test", clip_config(d), d.data_dir or None)
  setting = f"{settings.method}{settings.steps}/g{settings.guidance:g}"
  result = {"motion": {setting: _motion_row(sampled, d.digit_size),
                       "real": _motion_row(held_out.videos_NFHWC[:len(labels)], d.digit_size)}}
  result["denoising"] = dit_eval.denoising(run, _AsImages(held_out), batch=request.batch,
                                          seed=0)
  aggregate.write(run.eval_path, result, {
      "workdir": run.workdir, "step": run.step, "suites": list(SUITES), "n_per_class": n,
      "n_per_subset": n, "sampler": settings.method, "steps": settings.steps,
      "guidance": settings.guidance})
  return result


class _AsImages:
  """A clip set as `dit_eval.denoising` reads an image set: `rows` gives `images`."""

  def __init__(self, clip_set):
    self.clip_set = clip_set

  def __len__(self) -> int:
    return len(self.clip_set)

  def rows(self, index) -> dict:
    return {"images": self.clip_set.videos_NFHWC[index], "labels": self.clip_set.labels_N[index]}
