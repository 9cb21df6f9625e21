"""The video family: a (2, 2, 2) mesh trains as one device, resume is exact, and a trained
run samples clips (PNG strip and GIF) and evaluates; bad input is one line."""

import json
import os

import numpy as np
import pytest

from scaling import cli, config as config_lib
from tests.helpers import (FOUR_STEPS, ROOT, assert_resume_is_exact,
                           assert_sharded_equals_one_device, train_one_device)

VIDEO_CONFIG = os.path.join(ROOT, "configs", "video", "moving_digits.py")
TINY_VIDEO = ("model.d_model=32", "model.n_layers=1", "model.n_heads=4", "model.n_kv_heads=2",
              "model.d_ff=64", "data.canvas=16", "data.digit_size=8", "data.frames=4",
              "data.num_train=64", "data.num_test=16", "train.batch_size=8",
              "train.warmup_steps=2", "train.log_every=1", "eval.every_steps=0",
              "eval.batch_size=8", "eval.max_examples=16", "diffusion.timesteps=100",
              "diffusion.eval_timesteps=(10,50,90)", "diffusion.sample_steps=5")


def tiny_video(*overrides):
  cfg = config_lib.load(VIDEO_CONFIG)
  config_lib.apply_overrides(cfg, [*TINY_VIDEO, *overrides])
  return cfg


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """Four steps on one device, checkpointed at 2 and 4."""
  cfg = tiny_video(*FOUR_STEPS)
  return cfg, train_one_device(cfg, str(tmp_path_factory.mktemp("reference")))


def test_sharded_training_equals_one_device(reference, tmp_path):
  assert_sharded_equals_one_device(*reference, str(tmp_path / "sharded"))


def test_resume_is_exact(reference, tmp_path):
  assert_resume_is_exact(*reference, str(tmp_path / "resumed"))


def test_a_run_samples_clips_and_evaluates(reference, tmp_path, capsys):
  _, workdir = reference
  out = tmp_path / "clips.png"
  assert cli.main(["sample", f"--workdir={workdir}", "--class", "3", "-n", "2",
                   f"--out={out}"]) == 0
  assert out.stat().st_size > 0 and (tmp_path / "clips.gif").stat().st_size > 0
  from PIL import Image
  gif = Image.open(tmp_path / "clips.gif")
  assert gif.n_frames == 4
  assert cli.main(["eval", f"--workdir={workdir}", "-n", "1", "--suite",
                   "clips,continuation"]) == 0
  with open(os.path.join(workdir, "eval.json")) as f:
    tasks = json.load(f)["tasks"]
  real = tasks["clips"]["real"]["metrics"]
  assert real["motion_residual"]["mean"] < 1e-9 and real["concentration"]["mean"] > 0.85
  assert real["identity_consistency"]["mean"] > 0.9
  [setting] = [s for s in tasks["clips"] if s != "real"]
  sampled = tasks["clips"][setting]
  assert sampled["n"] == 10 and {"frame_fd", "frame_kid", "precision", "recall", "clip_fd",
                                 "class_accuracy"} <= set(sampled["metrics"])
  [continued] = tasks["continuation"].values()
  assert continued["n"] > 5 and continued["chance"]["path_error"] > 0  # 16 held-out clips
  assert set(tasks["denoising"]) == {"t10", "t50", "t90"}


def test_a_continuation_keeps_the_given_frames(reference, tmp_path):
  from scaling import runs
  from scaling.generate import image_sampling, video
  _, workdir = reference
  run = runs.load(workdir)
  truth, labels = video.held_out_clips(run, [0, 1], 2)
  settings = image_sampling.SamplerSettings.from_config(run.cfg.diffusion)
  drawn = video.continue_clips(run, truth, labels, 1, settings)
  np.testing.assert_array_equal(drawn[:, :3], truth[:, :3])
  assert not np.allclose(drawn[:, 3], truth[:, 3])
  out = tmp_path / "continued.png"
  assert cli.main(["sample", f"--workdir={workdir}", "--class", "1", "-n", "2",
                   "--continue", "2", f"--out={out}"]) == 0
  from PIL import Image
  width, height = Image.open(out).size
  assert width == height  # 4 frames x 4 rows: each held-out clip above its continuation


@pytest.mark.parametrize("argv, message", [
    (["sample", "--prompt", "1+1="], "holds a video model: give classes"),
    (["eval", "--task", "x.json"], "--task is for language models"),
    (["eval", "--guidance", "2"], "--guidance is not taken by a video model's eval"),
    (["sample", "--continue", "4"], "--continue 4 does not fit the model's 4-frame clips"),
])
def test_flags_for_other_kinds_are_one_line(reference, capsys, argv, message):
  _, workdir = reference
  assert cli.main([*argv, f"--workdir={workdir}"]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and message in err[0], err


def test_a_clip_length_the_tubelets_cannot_cut_is_one_line(tmp_path, capsys):
  assert cli.main(["train", f"--config={VIDEO_CONFIG}", f"--workdir={tmp_path / 'run'}",
                   *(f"--config.{o}" for o in TINY_VIDEO), "--config.data.frames=5"]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert err == ["error: config.model.tubelet: 5 frames are not divisible by tubelet=2"], err
