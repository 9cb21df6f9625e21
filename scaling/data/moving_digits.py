"""Moving digits: clips with a known law of motion (after Srivastava et al. 2015's Moving
MNIST), made from the toolkit's 8x8 digits.

Each clip puts one or two digits (upscaled to `digit_size`) on a black `canvas` and moves
each at a constant integer velocity for `frames` frames, bouncing off the walls. Where
digits overlap, the brighter pixel wins. Every clip records its digits' classes, source
images and motion (start and velocity), so a generated continuation can be scored against
the true path. Train clips draw their digits from the digits' train split and held-out
clips from its test split, so no held-out digit image is ever seen in training. The clips
follow from the data seed alone.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from scaling.data import builders, image_sets
from scaling.data.examples import read_all

MAX_SPEED = 3  # pixels per frame, each axis


@dataclasses.dataclass(frozen=True)
class Motion:
  """One digit's path: start (row, column) of its top-left corner and velocity, pixels."""
  start: tuple[int, int]
  velocity: tuple[int, int]


def bounce(start: int, velocity: int, frames: int, limit: int) -> np.ndarray:
  """Positions in [0, limit] of a point moving at `velocity` that reflects off 0 and
  `limit`: the unfolded straight path folded into the interval (a triangle wave)."""
  if limit == 0:
    return np.zeros(frames, np.int64)
  unfolded = start + velocity * np.arange(frames)
  phase = np.mod(unfolded, 2 * limit)
  return np.where(phase <= limit, phase, 2 * limit - phase)


def path(motion: Motion, frames: int, limit: int) -> np.ndarray:
  """[frames, 2] top-left corners (row, column) of a digit along its path."""
  return np.stack([bounce(motion.start[a], motion.velocity[a], frames, limit)
                   for a in range(2)], axis=1)


def render(digits_NSS: np.ndarray, motions: list[Motion], frames: int,
           canvas: int) -> np.ndarray:
  """[frames, canvas, canvas] uint8: each digit image drawn at its path's corners."""
  size = digits_NSS.shape[1]
  clip = np.zeros((frames, canvas, canvas), np.uint8)
  for digit, motion in zip(digits_NSS, motions):
    for f, (r, c) in enumerate(path(motion, frames, canvas - size)):
      np.maximum(clip[f, r:r + size, c:c + size], digit, out=clip[f, r:r + size, c:c + size])
  return clip


def draw_motion(rng: np.random.Generator, canvas: int, size: int) -> Motion:
  """A start anywhere the digit fits and a velocity of 1 to MAX_SPEED pixels per frame on
  each axis, in either direction."""
  start = tuple(int(v) for v in rng.integers(0, canvas - size + 1, 2))
  speed = rng.integers(1, MAX_SPEED + 1, 2) * rng.choice([-1, 1], 2)
  return Motion(start, tuple(int(v) for v in speed))


def upscale(images_NHW: np.ndarray, factor: int) -> np.ndarray:
  """Nearest-neighbour upscaling by an integer factor (keeps the pixels' values)."""
  return np.repeat(np.repeat(images_NHW, factor, axis=1), factor, axis=2)


@dataclasses.dataclass(frozen=True)
class Clip:
  video_FSS: np.ndarray      # uint8 frames
  labels: tuple[int, ...]    # each digit's class
  sources: tuple[int, ...]   # each digit's index in its split of the digits
  motions: tuple[Motion, ...]


def clips(digits_NHW: np.ndarray, labels_N: np.ndarray, n: int, *, seed: int, frames: int,
          canvas: int, digit_size: int, n_digits: int) -> list[Clip]:
  """`n` clips from the digit images `digits_NHW` (uint8) of one split, in a fixed order
  given by `seed`."""
  factor = digit_size // digits_NHW.shape[1]
  big_NSS = upscale(digits_NHW, factor)
  rng = np.random.default_rng([seed, 31])
  out = []
  for _ in range(n):
    sources = tuple(int(i) for i in rng.choice(len(big_NSS), n_digits, replace=False))
    motions = tuple(draw_motion(rng, canvas, digit_size) for _ in sources)
    video = render(big_NSS[list(sources)], list(motions), frames, canvas)
    out.append(Clip(video, tuple(int(labels_N[i]) for i in sources), sources, motions))
  return out


def centre_of_mass(frame_SS: np.ndarray) -> np.ndarray:
  """(row, column) of a frame's brightness-weighted centre."""
  weights = np.asarray(frame_SS, np.float64)
  rows, cols = np.indices(weights.shape)
  total = weights.sum()
  return np.array([(rows * weights).sum() / total, (cols * weights).sum() / total])


# --- written once as array_record ----------------------------------------------------------

@dataclasses.dataclass(kw_only=True)
class MovingDigitsConfig(tfds.core.BuilderConfig):
  canvas: int = 32
  frames: int = 8
  digit_size: int = 16
  n_digits: int = 1
  num_train: int = 4096
  num_test: int = 512
  seed: int = 0


class MovingDigits(tfds.core.GeneratorBasedBuilder):
  """Clips of moving digits: `video` uint8 [F, S, S, 1], `label` (the first digit's class),
  and per digit its class, source index, start and velocity."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = []  # Configs are made from run configs, not listed here.

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    per_digit = lambda shape: tfds.features.Tensor(shape=(c.n_digits, *shape), dtype=np.int32)
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "video": tfds.features.Tensor(shape=(c.frames, c.canvas, c.canvas, 1),
                                          dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=image_sets.NUM_CLASSES),
            "labels": per_digit(()), "sources": per_digit(()),
            "starts": per_digit((2,)), "velocities": per_digit((2,)),
            "index": tfds.features.Scalar(dtype=np.int32),
        }),
        description="Moving digits with a recorded law of motion (see scaling.data.moving_digits).",
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: self._generate_examples(split) for split in image_sets.SPLITS}

  def _generate_examples(self, split):
    c = self.builder_config
    digits = image_sets.digits_builder(8, self.data_dir_root)
    digits.download_and_prepare()
    records = sorted(read_all(digits.as_data_source(split=split)), key=lambda r: r["index"])
    images_NHW = np.stack([r["image"][..., 0] for r in records])
    labels_N = np.array([r["label"] for r in records])
    n = c.num_train if split == "train" else c.num_test
    made = clips(images_NHW, labels_N, n, seed=c.seed + (split == "test") * 1_000_003,
                 frames=c.frames, canvas=c.canvas, digit_size=c.digit_size,
                 n_digits=c.n_digits)
    for i, clip in enumerate(made):
      yield i, {"video": clip.video_FSS[..., None], "label": clip.labels[0],
                "labels": np.array(clip.labels, np.int32),
                "sources": np.array(clip.sources, np.int32),
                "starts": np.array([m.start for m in clip.motions], np.int32),
                "velocities": np.array([m.velocity for m in clip.motions], np.int32),
                "index": i}


@dataclasses.dataclass(frozen=True)
class ClipSet:
  """A split as arrays: `videos_NFHWC` float32 in [-1, 1], `labels_N` (the first digit's
  class), and each clip's motion (`starts_NK2`, `velocities_NK2`, K digits)."""
  videos_NFHWC: np.ndarray
  labels_N: np.ndarray
  starts_NK2: np.ndarray
  velocities_NK2: np.ndarray

  def __len__(self) -> int:
    return len(self.labels_N)

  def rows(self, index) -> dict[str, np.ndarray]:
    return {"videos": self.videos_NFHWC[index], "labels": self.labels_N[index]}


def load(split: str, config: MovingDigitsConfig, data_dir: str | None = None) -> ClipSet:
  """A split ("train" or "test") of the clips `config` describes, written on first use."""
  if split not in image_sets.SPLITS:
    raise ValueError(f"split must be one of {image_sets.SPLITS}, got {split!r}")
  data_dir = data_dir or builders.default_data_dir()
  with builders.preparing(data_dir):
    builder = MovingDigits(config=config, data_dir=data_dir, file_format="array_record")
    builder.download_and_prepare()
  records = sorted(read_all(builder.as_data_source(split=split)), key=lambda r: r["index"])
  return ClipSet(image_sets.to_unit_range(np.stack([r["video"] for r in records])),
                 np.array([r["label"] for r in records], np.int32),
                 np.stack([r["starts"] for r in records]),
                 np.stack([r["velocities"] for r in records]))


def config_for(*, canvas: int, frames: int, digit_size: int, n_digits: int, num_train: int,
               num_test: int, seed: int) -> MovingDigitsConfig:
  """The builder config of these clips, named by their fields (one folder per setting)."""
  fields = dict(canvas=canvas, frames=frames, digit_size=digit_size, n_digits=n_digits,
                num_train=num_train, num_test=num_test, seed=seed)
  name = "-".join(f"{k}{v}" for k, v in fields.items()).replace("_", "")
  return MovingDigitsConfig(name=name, **fields)


# --- reading motion back from frames -------------------------------------------------------

def fit_path(centres_F: np.ndarray, limit: int) -> tuple[float, int, int]:
  """The bouncing path (integer start in [0, limit], velocity in [-MAX_SPEED, MAX_SPEED])
  plus a constant offset that best fits one axis of a centre-of-mass series, by exhaustive
  search: (RMS residual in pixels, start, velocity). Velocity 0 is a static digit. The
  offset (the digit's own centre in its box) absorbs the start unless the path meets a
  wall: the first best start is returned."""
  frames = len(centres_F)
  best = (np.inf, 0, 0)
  for velocity in range(-MAX_SPEED, MAX_SPEED + 1):
    for start in range(limit + 1):
      corners = bounce(start, velocity, frames, limit)
      residual_F = centres_F - corners
      rms = float(np.sqrt(np.mean((residual_F - residual_F.mean()) ** 2)))
      if rms < best[0] - 1e-12:
        best = (rms, start, velocity)
  return best


def motion_residual(video_FSS: np.ndarray, digit_size: int) -> float:
  """How far a one-digit clip's centre of mass strays from the best constant-velocity path
  with bounces (RMS over frames and both axes, pixels): 0 for a clip that follows the law
  of motion, a static one included."""
  video = np.clip(np.asarray(video_FSS, np.float64), 0, None)
  centres_F2 = np.stack([centre_of_mass(frame) for frame in video])
  limit = video.shape[1] - digit_size
  residuals = [fit_path(centres_F2[:, axis], limit)[0] for axis in range(2)]
  return float(np.sqrt(np.mean(np.square(residuals))))


def concentration(video_FSS: np.ndarray, digit_size: int) -> float:
  """The share of each frame's brightness inside a digit-sized window centred on its
  centre of mass, averaged over frames: near 1 for one digit, the window's share of the
  canvas for noise. A path read from noise (whose centre barely moves) is not motion."""
  video = np.clip(np.asarray(video_FSS, np.float64), 0, None)
  canvas, half = video.shape[1], digit_size / 2
  shares = []
  for frame in video:
    r, c = centre_of_mass(frame)
    r0 = int(round(min(max(r - half, 0), canvas - digit_size)))
    c0 = int(round(min(max(c - half, 0), canvas - digit_size)))
    shares.append(frame[r0:r0 + digit_size, c0:c0 + digit_size].sum() / frame.sum())
  return float(np.mean(shares))
