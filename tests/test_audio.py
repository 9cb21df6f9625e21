"""Audio: the codec trains on a (2, 2, 2) mesh as on one device and resumes exactly, its
dead codes are restarted onto the data, a codec run samples WAV files and reports its
quality per level; the audio language model trains on its tokens, continues held-out
speech into WAV files and scores spoken counting; the word recogniser generalises to
held-out voices; bad input is one line."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling import cli, config as config_lib
from scaling.data import audio_tokens, speech, spoken_counting
from tests.helpers import (FOUR_STEPS, ROOT, assert_resume_is_exact,
                           assert_sharded_equals_one_device, train_one_device)

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (tools/install_espeak.sh installs Debian's package)")

CODEC_CONFIG = os.path.join(ROOT, "configs", "audio", "codec.py")
AUDIO_CONFIG = os.path.join(ROOT, "configs", "audio", "counting.py")
DATA = ("data.n_speakers=10", "data.num_train=16", "data.num_test=4")
TINY_CODEC = (*DATA, "model.channels=4", "model.latent_dim=8", "model.n_codebooks=2",
              "model.codebook_size=16", "data.segment_s=0.4", "train.batch_size=8",
              "train.warmup_steps=2", "train.log_every=1", "eval.every_steps=0",
              "eval.batch_size=8", "eval.max_examples=8", "codec.restart_probability=0.5")
TINY_AUDIO = (*DATA, "model.d_model=32", "model.n_layers=1", "model.n_heads=2",
              "model.n_kv_heads=2", "model.d_ff=64", "data.levels=2", "data.codebook_size=16",
              "data.vocab_size=34", "data.seq_len=400", "train.batch_size=8",
              "train.warmup_steps=2", "train.log_every=1", "eval.every_steps=0",
              "eval.batch_size=8", "eval.max_examples=8")


def load(path, *overrides):
  cfg = config_lib.load(path)
  config_lib.apply_overrides(cfg, list(overrides))
  return cfg


@pytest.fixture(scope="module")
def codec(tmp_path_factory):
  """Four steps of a tiny codec on one device, checkpointed at 2 and 4."""
  cfg = load(CODEC_CONFIG, *TINY_CODEC, *FOUR_STEPS)
  return cfg, train_one_device(cfg, str(tmp_path_factory.mktemp("codec")))


@pytest.fixture(scope="module")
def audio_lm(codec, tmp_path_factory):
  """Four steps of a tiny audio language model over that codec's tokens."""
  cfg = load(AUDIO_CONFIG, *TINY_AUDIO, *FOUR_STEPS, f"data.codec={codec[1]}")
  return cfg, train_one_device(cfg, str(tmp_path_factory.mktemp("audio")))


def test_the_codec_on_a_mesh_equals_one_device(codec, tmp_path):
  assert_sharded_equals_one_device(*codec, str(tmp_path / "sharded"))


def test_the_codec_resumes_exactly(codec, tmp_path):
  assert_resume_is_exact(*codec, str(tmp_path / "resumed"))


def test_dead_codes_are_restarted_onto_the_data(codec):
  """Random codebooks leave many codes unused by real speech; a restart step moves every
  unused one onto a frame of the batch, after which nearly every code is chosen (frames
  of silence are identical, so two codes moved onto two of them tie, and one stays
  unused)."""
  from scaling.families import family_for
  from scaling.models import rvq
  cfg = codec[0].copy_and_resolve_references()
  cfg.model.codebook_size = 64
  family = family_for(cfg)
  data = family.load_data()
  batch = {"audio": jnp.asarray(data["train"].audio_NT[:8])}
  model = family.make_model()
  z_ND = model.latents(batch["audio"]).reshape(-1, cfg.model.latent_dim)
  K = cfg.model.codebook_size
  codes = np.asarray(model.quantiser.encode(z_ND, 1))[:, 0]
  before = rvq.usage(codes[:, None], K)
  old = np.asarray(model.quantiser.codebooks_QKD[...])
  books = rvq.restart_dead_codes(jnp.asarray(old), model.quantiser.residuals(z_ND),
                                 jax.random.key(0))
  model.quantiser.codebooks_QKD.value = books
  after = rvq.usage(model.quantiser.encode(z_ND, 1), K)
  assert before["dead"][0] > 0.2
  assert after["dead"][0] <= 0.1 and after["perplexity"][0] > K / 4
  used = np.bincount(codes, minlength=K) > 0  # these stay where they were
  np.testing.assert_array_equal(np.asarray(books)[0][used], old[0][used])


def test_a_codec_run_writes_wavs_and_its_quality_per_level(codec, tmp_path):
  _, workdir = codec
  assert cli.main(["sample", f"--workdir={workdir}", "-n", "1", f"--out={tmp_path}"]) == 0
  original = speech.read_wav((tmp_path / "utterance0-original.wav").read_bytes())
  for q in (1, 2):
    decoded, rate = speech.read_wav((tmp_path / f"utterance0-levels{q}.wav").read_bytes())
    assert rate == speech.SAMPLE_RATE and len(decoded) == len(original[0])
  assert (tmp_path / "utterance0.png").stat().st_size > 0
  assert cli.main(["eval", f"--workdir={workdir}", "-n", "2"]) == 0
  with open(os.path.join(workdir, "eval.json")) as f:
    tasks = json.load(f)["tasks"]
  assert set(tasks["reconstruction"]) == {"levels1", "levels2"}
  rates = [tasks["reconstruction"][f"levels{q}"]["metrics"]["bitrate"]["mean"] for q in (1, 2)]
  assert rates == [50 * 4, 100 * 4]  # 50 frames a second, 4 bits a code
  assert all(np.isfinite(tasks["reconstruction"]["levels2"]["metrics"][m]["mean"])
             for m in ("si_snr", "mel_distance", "spectral_distance"))
  assert set(tasks["usage"]) == {"level1", "level2"}


def test_tokens_flatten_levels_and_come_back():
  codes = np.array([[3, 0], [15, 7], [1, 1]])
  tokens = audio_tokens.to_tokens(codes, 16)
  assert tokens.tolist() == [1, 5, 18, 17, 25, 3, 19]
  np.testing.assert_array_equal(audio_tokens.to_codes(tokens[1:], 2, 16), codes)
  rows = audio_tokens.examples([codes, codes[:1]], 16, seq_len=8)
  assert rows.loss_mask.sum(1).tolist() == [6, 2]


def test_the_audio_lm_continues_speech_and_scores_counting(audio_lm, tmp_path):
  _, workdir = audio_lm
  assert cli.main(["sample", f"--workdir={workdir}", "-n", "1", f"--out={tmp_path}",
                   "--max_new_tokens", "20"]) == 0
  prompt, _ = speech.read_wav((tmp_path / "utterance0-prompt.wav").read_bytes())
  continued, _ = speech.read_wav((tmp_path / "utterance0-continued.wav").read_bytes())
  assert len(continued) == len(prompt) + 10 * 320  # 10 frames of 320 samples drawn
  assert cli.main(["eval", f"--workdir={workdir}", "-n", "3"]) == 0
  with open(os.path.join(workdir, "eval.json")) as f:
    result = json.load(f)
  model = result["tasks"]["counting"]["model"]
  assert model["n"] == 3 and 0 <= model["metrics"]["exact_match"]["mean"] <= 1
  assert -np.log(34) - 3 < model["metrics"]["log_prob"]["mean"] < 0
  assert "codec" in result["tasks"]["counting"] and len(result["heard"]) == 3


def test_the_recogniser_hears_held_out_voices():
  """Trained on clean words of 40 speakers' utterances, it names the number words of
  voices it never heard."""
  from scaling.evals import codec as codec_eval, spoken_words
  config = spoken_counting.config_for(n_speakers=40, length=4, num_train=120, num_test=40,
                                      seed=0)
  train, test = (spoken_counting.load(s, config) for s in ("train", "test"))
  recogniser = spoken_words.train(*codec_eval.words(train, train.audio), steps=300,
                                  progress=False)
  clips, labels = codec_eval.words(test, test.audio)
  accuracy = np.mean(spoken_words.predict(recogniser, clips) == labels)
  assert accuracy >= 0.9, accuracy
  # The last word of each held-out utterance, cut from just before it to the end.
  cut = [a[s - 800:] for a, s in zip(test.audio, test.spans_NK2[:, 3, 0])]
  heard = spoken_words.predict(recogniser, [spoken_words.first_word(c) for c in cut])
  assert np.mean(heard == test.words_NK[:, 3]) >= 0.9


@pytest.mark.parametrize("argv, message", [
    (["sample", "--prompt", "three four five"],
     "holds an audio model: it continues held-out speech, not text"),
    (["eval", "--task", "x.json"], "--task is not taken by an audio model"),
])
def test_text_given_to_an_audio_run_is_one_line(audio_lm, capsys, argv, message):
  _, workdir = audio_lm
  assert cli.main([*argv, f"--workdir={workdir}"]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and message in err[0], err


def test_strides_that_do_not_divide_the_sample_rate_are_one_line(tmp_path, capsys):
  assert cli.main(["train", f"--config={CODEC_CONFIG}", f"--workdir={tmp_path / 'run'}",
                   *(f"--config.{o}" for o in TINY_CODEC), "--config.model.strides=(3,4,5)"
                   ]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert err == ["error: config.model.strides: the strides (3, 4, 5) make a hop of 60 "
                 "samples, which does not divide the sample rate 16000"], err


def test_an_audio_run_without_a_codec_is_one_line(tmp_path, capsys):
  assert cli.main(["train", f"--config={AUDIO_CONFIG}", f"--workdir={tmp_path / 'run'}",
                   *(f"--config.{o}" for o in TINY_AUDIO)]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("error: config.data.codec: give the codec run"), err
