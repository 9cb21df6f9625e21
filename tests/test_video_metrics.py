"""The video metrics on constructed clips: real clips score as the ceiling, a static clip
moves perfectly at zero velocity, shuffled frames fail motion and the clip distance, a digit
that changes between frames fails identity, noise fails every frame metric, and a
continuation that holds still misses the true path."""

import numpy as np
import pytest

from scaling.data import moving_digits as md
from scaling.evals import video as video_eval

N = 128


@pytest.fixture(scope="module")
def scorer():
  config = md.config_for(canvas=16, frames=8, digit_size=8, n_digits=1, num_train=512,
                         num_test=2 * N, seed=0)
  return video_eval.Scorer(config)


@pytest.fixture(scope="module")
def rows(scorer):
  """Every metric of real, shuffled, static, identity-swapping and noise clips."""
  clips, labels = scorer.real_NFHWC[:N], scorer.real_labels_N[:N]
  rng = np.random.default_rng(0)
  frames = np.arange(clips.shape[1])
  swapped = clips[(np.arange(N)[:, None] + frames) % N, frames]  # frame f from clip i + f
  made = {"real": clips,
          "shuffled": np.stack([c[rng.permutation(frames)] for c in clips]),
          "static": np.repeat(clips[:, :1], len(frames), axis=1),
          "swapped": swapped,
          "noise": rng.uniform(-1, 1, clips.shape).astype(np.float32)}
  return {name: {k: v["mean"] for k, v in scorer.row(c, labels)["metrics"].items()}
          for name, c in made.items()}


def test_real_clips_are_the_ceiling(rows):
  real = rows["real"]
  assert real["motion_residual"] < 1e-9 and real["concentration"] > 0.9
  assert real["identity_consistency"] > 0.9 and real["class_accuracy"] > 0.9
  assert real["precision"] > 0.5 and real["recall"] > 0.5
  for name in ("shuffled", "static", "swapped", "noise"):  # the clip distance sees time
    assert rows[name]["clip_fd"] > 1.5 * real["clip_fd"], name


def test_a_static_clip_moves_perfectly_and_shuffled_frames_do_not(rows, scorer):
  assert rows["static"]["motion_residual"] < 1e-9
  still = video_eval.brightness(np.repeat(scorer.real_NFHWC[:1, :1], 8, axis=1))[0]
  centres = np.stack([md.centre_of_mass(f) for f in still])
  assert all(md.fit_path(centres[:, axis], 8)[2] == 0 for axis in range(2))  # velocity 0
  assert rows["shuffled"]["motion_residual"] > 0.5


def test_identity_breaks_when_the_digit_changes_and_noise_fails_the_frames(rows):
  assert rows["swapped"]["identity_consistency"] < 0.6
  noise, real = rows["noise"], rows["real"]
  assert noise["frame_fd"] > 5 * real["frame_fd"] and noise["frame_kid"] > 5 * real["frame_kid"]
  assert noise["precision"] < 0.1 and noise["concentration"] < 0.5


def test_path_error_is_zero_on_the_truth_and_not_when_held_still(scorer):
  truth = scorer.held_out.videos_NFHWC[:16]
  assert np.all(video_eval.path_errors(truth[:, 4:], truth[:, 4:]) < 1e-9)
  held = np.repeat(truth[:, 3:4], 4, axis=1)
  assert video_eval.path_errors(held, truth[:, 4:]).mean() > 1.0
