"""Moving digits follow their law of motion exactly: straight lines at constant velocity,
reflected at the walls, as the centre of mass of every frame shows."""

import numpy as np
import pytest

from scaling.data import moving_digits as md


def _simulated(start, velocity, frames, limit):
  """The bouncing path, one step at a time: move, and reflect what passes a wall."""
  p, v, out = start, velocity, []
  for _ in range(frames):
    out.append(p)
    p += v
    while p < 0 or p > limit:
      p, v = (-p, -v) if p < 0 else (2 * limit - p, -v)
  return np.array(out)


def test_bounce_is_the_step_by_step_reflection():
  rng = np.random.default_rng(0)
  for _ in range(500):
    limit = int(rng.integers(1, 30))
    start, velocity = int(rng.integers(0, limit + 1)), int(rng.integers(-3, 4))
    np.testing.assert_array_equal(md.bounce(start, velocity, 40, limit),
                                  _simulated(start, velocity, 40, limit))


@pytest.fixture(scope="module")
def digits():
  from sklearn.datasets import load_digits
  d = load_digits()
  return np.round(d.images * (255 / 16)).astype(np.uint8), d.target


def test_each_frames_centre_of_mass_follows_the_recorded_path(digits):
  images, labels = digits
  clips = md.clips(images, labels, 50, seed=3, frames=16, canvas=32, digit_size=16,
                   n_digits=1)
  for clip in clips:
    digit = md.upscale(images[list(clip.sources)], 2)[0]
    own = md.centre_of_mass(digit)
    corners = md.path(clip.motions[0], 16, 32 - 16)
    for frame, corner in zip(clip.video_FSS, corners):
      np.testing.assert_allclose(md.centre_of_mass(frame), own + corner, atol=1e-9)
    assert clip.labels == (labels[clip.sources[0]],)
  # The paths move, and some reach a wall and turn back within 16 frames.
  velocities = np.array([c.motions[0].velocity for c in clips])
  assert (np.abs(velocities) >= 1).all() and (np.abs(velocities) <= md.MAX_SPEED).all()
  turned = [np.diff(md.path(c.motions[0], 16, 16), axis=0) for c in clips]
  assert any((np.sign(d[:-1]) != np.sign(d[1:])).any() for d in turned)


def test_clips_follow_from_the_seed(digits):
  images, labels = digits
  make = lambda seed: md.clips(images, labels, 5, seed=seed, frames=8, canvas=32,
                               digit_size=16, n_digits=2)
  a, b, c = make(0), make(0), make(1)
  assert all(np.array_equal(x.video_FSS, y.video_FSS) and x.motions == y.motions
             for x, y in zip(a, b))
  assert any(not np.array_equal(x.video_FSS, z.video_FSS) for x, z in zip(a, c))
  assert all(len(x.labels) == 2 and x.sources[0] != x.sources[1] for x in a)
  # Two digits: each pixel is the brighter of the two drawn alone.
  x = a[0]
  alone = [md.render(md.upscale(images[[s]], 2), [m], 8, 32) for s, m in
           zip(x.sources, x.motions)]
  np.testing.assert_array_equal(x.video_FSS, np.maximum(*alone))


def test_written_clips_hold_out_the_test_digits_and_read_back(tmp_path, digits):
  config = md.config_for(canvas=32, frames=8, digit_size=16, n_digits=1, num_train=64,
                         num_test=16, seed=5)
  train = md.load("train", config, data_dir=str(tmp_path))
  test = md.load("test", config, data_dir=str(tmp_path))
  assert train.videos_NFHWC.shape == (64, 8, 32, 32, 1) and len(test) == 16
  assert train.videos_NFHWC.min() == -1 and train.videos_NFHWC.max() <= 1
  # A held-out clip is the render of its recorded motion from a held-out digit image.
  from scaling.data import image_sets
  from scaling.data.examples import read_all
  source = image_sets.digits_builder(8, str(tmp_path)).as_data_source(split="test")
  test_digits = sorted(read_all(source), key=lambda r: r["index"])
  images = np.stack([r["image"][..., 0] for r in test_digits])
  rebuilt = md.clips(images, np.array([r["label"] for r in test_digits]), 16,
                     seed=5 + 1_000_003, frames=8, canvas=32, digit_size=16, n_digits=1)
  for i, clip in enumerate(rebuilt):
    assert (clip.motions[0].start, clip.motions[0].velocity) == (
        tuple(test.starts_NK2[i, 0]), tuple(test.velocities_NK2[i, 0]))
    np.testing.assert_allclose(test.videos_NFHWC[i, ..., 0],
                               image_sets.to_unit_range(clip.video_FSS))
  assert md.load("train", config, data_dir=str(tmp_path)).videos_NFHWC.tobytes() == \
      train.videos_NFHWC.tobytes()


def test_motion_residual_is_zero_on_the_law_of_motion_and_large_when_frames_shuffle(digits):
  images, labels = digits
  clips = md.clips(images, labels, 20, seed=7, frames=12, canvas=32, digit_size=16,
                   n_digits=1)
  rng = np.random.default_rng(0)
  real = [md.motion_residual(c.video_FSS, 16) for c in clips]
  static = md.motion_residual(np.repeat(clips[0].video_FSS[:1], 12, axis=0), 16)
  shuffled = [md.motion_residual(c.video_FSS[rng.permutation(12)], 16) for c in clips]
  assert max(real) < 1e-9 and static < 1e-9
  moving = [s for s, c in zip(shuffled, clips) if np.ptp(md.path(c.motions[0], 12, 16)) > 4]
  assert min(moving) > 1.0, moving  # pixels
  # The fit recovers each clip's recorded speed (the start is known only up to the digit's
  # own centre unless the path meets a wall; a path that starts at a wall reads the same
  # with either sign of velocity).
  for c in clips:
    centres = np.stack([md.centre_of_mass(f) for f in c.video_FSS])
    for axis in range(2):
      rms, _, velocity = md.fit_path(centres[:, axis], 16)
      assert rms < 1e-9 and abs(velocity) == abs(c.motions[0].velocity[axis])


def test_concentration_tells_a_digit_from_noise(digits):
  images, labels = digits
  clips = md.clips(images, labels, 20, seed=9, frames=8, canvas=32, digit_size=16,
                   n_digits=1)
  real = [md.concentration(c.video_FSS, 16) for c in clips]
  noise = np.random.default_rng(0).uniform(0, 255, (20, 8, 32, 32))
  noisy = [md.concentration(v, 16) for v in noise]
  assert min(real) > 0.85
  assert max(noisy) < 0.3 and abs(np.mean(noisy) - 16 * 16 / 32 ** 2) < 0.03
  # Noise's centre barely moves: the path alone would read it as a static digit.
  assert np.mean([md.motion_residual(v, 16) for v in noise]) < 1.0
