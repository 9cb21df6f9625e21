"""The contrastive family: its metrics on constructed embeddings, its captions, a (2, 2, 2)
mesh equal to one device, exact resume, a trained run's evaluation, and bad input."""

import json
import os
from math import comb

import jax
import numpy as np
import pytest

from scaling import cli, config as config_lib
from scaling.data import captions
from scaling.evals import clip as clip_eval
from scaling.families import family_for
from scaling.train import loop
from tests.helpers import (FOUR_STEPS, ROOT, assert_resume_is_exact,
                           assert_sharded_equals_one_device, train_one_device)

CLIP_CONFIG = os.path.join(ROOT, "configs", "clip", "digits.py")
TINY_CLIP = ("model.d_model=16", "model.n_layers=1", "model.n_heads=2", "model.n_kv_heads=2",
             "model.d_ff=32", "model.embed_dim=8", "train.batch_size=16",
             "train.warmup_steps=2", "train.log_every=1", "eval.every_steps=0",
             "eval.batch_size=64", "eval.max_examples=128")


def tiny_clip(*overrides):
  cfg = config_lib.load(CLIP_CONFIG)
  config_lib.apply_overrides(cfg, [*TINY_CLIP, *overrides])
  return cfg


def test_one_hot_embeddings_score_one_and_shuffled_pairs_score_chance():
  rng = np.random.default_rng(0)
  labels_N = rng.integers(0, 10, 2000)
  classes = np.eye(10)
  right_NK = labels_N[:, None] == np.arange(10)[None, :]
  # The image embedding is its label's one-hot, the class prompts' are theirs.
  ranked = clip_eval.ranked_scores(classes[labels_N] @ classes.T, right_NK)
  assert ranked["recall_at_1"].mean() == 1 and ranked["correct_prob"].min() > 0.2
  # Shuffled pairs: each image embeds another image's label.
  shuffled = clip_eval.ranked_scores(classes[rng.permutation(labels_N)] @ classes.T, right_NK)
  chance = clip_eval.chance_at(right_NK, 1)
  assert chance == pytest.approx(0.1)
  assert abs(shuffled["recall_at_1"].mean() - chance) < 3 * (0.1 * 0.9 / 2000) ** 0.5
  # recall@5 by chance: one of 5 of 10 candidates is the right one half the time, and
  # with 3 right of 12, 1 - C(9, 5) / C(12, 5).
  assert clip_eval.chance_at(right_NK, 5) == pytest.approx(0.5)
  three_of_twelve = np.zeros((1, 12), bool)
  three_of_twelve[0, :3] = True
  assert clip_eval.chance_at(three_of_twelve, 5) == pytest.approx(1 - comb(9, 5) / comb(12, 5))


def test_captions_name_their_digit_and_hold_out_arithmetic():
  length = captions.max_tokens(10)
  train, held = captions.table("train", 10, length), captions.table("eval", 10, length)
  words = dict(zip(captions.WORDS, range(10)))
  for table in (train, held):
    for text, label in zip(table.texts, table.labels_C):
      parts = text.split()
      if "plus" in parts:
        assert words[parts[0]] + words[parts[2]] == label, text
      elif "minus" in parts:
        assert words[parts[0]] - words[parts[2]] == label, text
  arithmetic = lambda t: {x for x in t.texts if " plus " in x or " minus " in x}
  assert arithmetic(train) and arithmetic(held) and not arithmetic(train) & arithmetic(held)
  assert set(train.texts) - arithmetic(train) == set(held.texts) - arithmetic(held)
  tokens = captions.encode(["7"], length)[0]
  assert list(tokens[:3]) == [1, ord("7") + 4, 2] and not tokens[3:].any()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """Four steps on one device, checkpointed at 2 and 4."""
  cfg = tiny_clip(*FOUR_STEPS)
  return cfg, train_one_device(cfg, str(tmp_path_factory.mktemp("reference")))


def test_sharded_training_equals_one_device(reference, tmp_path):
  assert_sharded_equals_one_device(*reference, str(tmp_path / "sharded"))


def test_resume_is_exact(reference, tmp_path):
  assert_resume_is_exact(*reference, str(tmp_path / "resumed"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """The c2 preset (~60k parameters) for 250 steps: it labels most digits by then."""
  cfg = config_lib.load(CLIP_CONFIG)
  config_lib.apply_overrides(cfg, ["train.steps=250", "train.log_every=50",
                                   "eval.every_steps=0", "checkpoint.every_steps=0",
                                   "mesh.data=1"])
  workdir = str(tmp_path_factory.mktemp("clip_trained"))
  assert loop.train(cfg, workdir, devices=jax.devices()[:1]) == 0
  return workdir


def test_a_trained_run_evaluates_above_chance(trained, capsys):
  assert cli.main(["eval", f"--workdir={trained}"]) == 0
  assert "zero_shot" in capsys.readouterr().out
  with open(os.path.join(trained, "eval.json")) as f:
    tasks = json.load(f)["tasks"]
  assert set(tasks) == {"zero_shot", "arithmetic", "retrieval"}
  assert set(tasks["zero_shot"]) == {"word", "digit", "successor", "all"}
  word = tasks["zero_shot"]["word"]
  assert word["n"] == 270 and word["chance"]["accuracy"] == pytest.approx(0.1)
  assert word["metrics"]["accuracy"]["ci_low"] > 0.1  # learned, by more than chance allows
  retrieval = tasks["retrieval"]["image_to_text"]
  assert retrieval["metrics"]["recall_at_5"]["mean"] >= retrieval["metrics"]["recall_at_1"]["mean"]
  assert 0 < retrieval["chance"]["recall_at_1"] < retrieval["chance"]["recall_at_5"] < 1
  assert set(tasks["retrieval"]) == {"image_to_text", "text_to_image", "all"}
  assert tasks["retrieval"]["all"]["n"] == 270 + 30  # images, then the 3 captions x 10 digits
  assert tasks["arithmetic"]["all"]["n"] == len(
      [t for t in captions.table("eval", 10, captions.max_tokens(10)).texts
       if " plus " in t or " minus " in t])


@pytest.mark.parametrize("argv, message", [
    (["eval", "--suite", "arithmetic"], "unknown suite 'arithmetic' for a contrastive model"),
    (["eval", "--task", "x.json"], "--task is for language models"),
    (["eval", "--guidance", "2"], "--guidance is for image generators"),
    (["sample", "--prompt", "1+1="], "draws neither; score it with `scaling eval`"),
])
def test_text_only_flags_on_a_contrastive_run_are_one_line(trained, capsys, argv, message):
  assert cli.main([*argv, f"--workdir={trained}"]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and message in err[0], err


def test_microbatches_are_refused_by_name():
  with pytest.raises(Exception, match="train.microbatches: must be 1"):
    family_for(tiny_clip("train.batch_size=16", "train.microbatches=2")).check()
