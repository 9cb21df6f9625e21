"""The video family: a video DiT (`scaling.models.video_dit`) learns to denoise clips of
moving digits (`scaling.data.moving_digits`) in space and time.

It is the diffusion family on clips: the same schedules, losses, samplers, guidance and
EMA, over [B, F, H, W, C] instead of [B, H, W, C]. Costs are counted per clip.
"""

from __future__ import annotations

import functools

import ml_collections
import numpy as np
from flax import nnx

from scaling.config import require
from scaling.data import image_sets, moving_digits
from scaling.families import base, diffusion as diffusion_family
from scaling.models import counting
from scaling.models.video_dit import VideoDiT, check_shapes


def base_config() -> ml_collections.ConfigDict:
  """Every field of a video config with its default (a ~340k-parameter video DiT on 8
  frames of 24x24 moving digits); presets in `configs/video/` start from here."""
  cfg = diffusion_family.base_config()
  cfg.name = "video"
  with cfg.unlocked():
    cfg.model.update(kind="video", patch_size=4)
    cfg.model.tubelet = 2                    # frames per token
    cfg.model.video_attention = "factorised"  # factorised | joint
    cfg.model.video_rope = True             # rotary positions over frame, row, column
    cfg.data = ml_collections.ConfigDict(dict(
        kind="clips",
        name="moving_digits",
        canvas=24,               # frames are canvas x canvas (9 x 9 places for the digit)
        frames=8,
        digit_size=16,           # the 8x8 digits, upscaled
        n_digits=1,              # 1 or 2 per clip
        channels=1,
        num_classes=10,          # the class of the (first) digit
        num_train=4096,
        num_test=512,
        data_dir="",             # "" = $SCALING_DATA_DIR or ~/.cache/scaling/data
        seed=0,                  # clips and their order; shared by every model size
    ))
  cfg.train.update(steps=8_000, batch_size=32)  # about 10 minutes on 2 CPU cores for v1
  cfg.eval.update(every_steps=500, batch_size=64, max_examples=256)
  # v-prediction: at high noise the model draws the clip itself rather than a copy of its
  # noise, which a DiT without a skip from input to output reproduces poorly.
  cfg.diffusion.update(prediction="v", sample_steps=50, guidance=4.0)
  return cfg


def check_data(d) -> None:
  require(d.kind == "clips" and d.name == "moving_digits", "data.name",
          f"the video family reads moving_digits clips, got {d.kind}/{d.name}")
  require(d.digit_size % 8 == 0 and d.digit_size > 0, "data.digit_size",
          f"must be a positive multiple of the digits' 8 pixels, got {d.digit_size}")
  require(d.canvas >= d.digit_size, "data.canvas",
          f"must be at least digit_size={d.digit_size}, got {d.canvas}")
  require(d.frames >= 2, "data.frames", f"must be at least 2, got {d.frames}")
  require(d.n_digits in (1, 2), "data.n_digits", f"must be 1 or 2, got {d.n_digits}")
  require(d.channels == 1 and d.num_classes == image_sets.NUM_CLASSES, "data.channels",
          "moving digits have 1 channel and 10 classes")
  require(d.num_train > 0 and d.num_test > 0, "data.num_train", "split sizes must be positive")


def clip_config(d) -> moving_digits.MovingDigitsConfig:
  return moving_digits.config_for(canvas=d.canvas, frames=d.frames, digit_size=d.digit_size,
                                  n_digits=d.n_digits, num_train=d.num_train,
                                  num_test=d.num_test, seed=d.seed)


class VideoFamily(diffusion_family.DiffusionFamily):
  """Class-conditional clip diffusion with a video DiT; costs counted per training clip."""

  kind = "video"
  base_config = staticmethod(base_config)
  data_key = "videos"  # the diffusion family's objective and metrics, over clips

  def check(self) -> None:
    base.check_transformer(self.cfg.model)
    check_data(self.cfg.data)
    check_shapes(self.cfg.model, self.cfg.data.frames, self.cfg.data.canvas)
    diffusion_family.check_diffusion(self.cfg.diffusion)

  def make_model(self, rngs: nnx.Rngs | None = None) -> nnx.Module:
    d = self.cfg.data
    with base.eager_sharding():
      return VideoDiT(self.cfg.model, d.frames, d.canvas, d.channels, d.num_classes,
                      rngs=rngs or nnx.Rngs(params=self.cfg.seed))

  @functools.cached_property
  def _parts(self) -> dict[str, int]:
    """Parameters by where they are used: the class table (a lookup), those applied once
    per clip (timestep MLP, adaLN projections) and those applied to every token."""
    state = nnx.to_flat_state(nnx.state(nnx.eval_shape(self.make_model), nnx.Param))
    parts = {"class_table": 0, "per_clip": 0, "per_token": 0}
    for path, variable in state:
      names = ".".join(map(str, path))
      part = ("class_table" if "class_ND" in names else
              "per_clip" if "ada" in names or "time_" in names else "per_token")
      parts[part] += int(np.prod(variable.value.shape))
    return parts

  def params(self) -> counting.ParamCounts:
    parts = self._parts
    total = sum(parts.values())
    return counting.ParamCounts(total, parts["class_table"], total - parts["class_table"])

  def flops_per_unit(self) -> float:
    """Training FLOPs per clip: 6 x (per-token weights x tokens + per-clip weights), plus
    attention's 12 x layers x D x (the scores each token computes): all F'S' tokens when
    joint, its frame's S' and its place's F' when factorised. Biases and norms are in."""
    m, d = self.cfg.model, self.cfg.data
    frames, places = d.frames // m.tubelet, (d.canvas // m.patch_size) ** 2
    tokens = frames * places
    scores = tokens * (tokens if m.video_attention == "joint" else places + frames)
    parts = self._parts
    return (6.0 * (parts["per_token"] * tokens + parts["per_clip"])
            + 12.0 * m.n_layers * m.d_model * scores)

  # --- data ---------------------------------------------------------------------------

  def load_data(self) -> dict:
    config = clip_config(self.cfg.data)
    data_dir = self.cfg.data.data_dir or None
    return {"train": moving_digits.load("train", config, data_dir),
            "eval": moving_digits.load("test", config, data_dir)}

  def synthetic_batch(self, rng) -> dict:
    """A global batch of random clips and labels, shaped like the real ones (benchmarks)."""
    d, B = self.cfg.data, self.cfg.train.batch_size
    pixels = rng.uniform(-1, 1, (B, d.frames, d.canvas, d.canvas, d.channels))
    return {"videos": pixels.astype(np.float32),
            "labels": rng.integers(0, d.num_classes, B).astype(np.int32)}
