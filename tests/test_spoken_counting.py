"""Spoken counting made by espeak-ng: the data follow from their config alone, no held-out
voice is heard in training, every word's span holds that word, and a missing espeak-ng is
one clear error naming the package."""

import os
import shutil

import numpy as np
import pytest

from scaling.data import speech, spoken_counting
from scaling.errors import UserError

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (tools/install_espeak.sh installs Debian's package)")

CONFIG = spoken_counting.config_for(n_speakers=6, length=4, num_train=6, num_test=3, seed=0)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
  """The same config written into two data directories, independently."""
  if shutil.which("espeak-ng") is None:
    pytest.skip(reason="espeak-ng is not installed (tools/install_espeak.sh installs "
                "Debian's package; .ci/run runs it)")
  speech.speak.cache_clear()  # the second directory speaks every word again
  first = {s: spoken_counting.load(s, CONFIG, str(tmp_path_factory.mktemp("a")))
           for s in ("train", "test")}
  speech.speak.cache_clear()
  second = {s: spoken_counting.load(s, CONFIG, str(tmp_path_factory.mktemp("b")))
            for s in ("train", "test")}
  return first, second


@needs_espeak
def test_the_data_follow_from_the_config(written):
  first, second = written
  for split in ("train", "test"):
    a, b = first[split], second[split]
    assert len(a) == (6 if split == "train" else 3)
    assert a.voices == b.voices
    np.testing.assert_array_equal(a.words_NK, b.words_NK)
    np.testing.assert_array_equal(a.spans_NK2, b.spans_NK2)
    for x, y in zip(a.audio, b.audio):
      np.testing.assert_array_equal(x, y)


@needs_espeak
def test_no_held_out_voice_is_heard_in_training(written):
  train, test = written[0]["train"], written[0]["test"]
  assert set(train.voices).isdisjoint(test.voices)
  train_voices = spoken_counting.split_speakers(6, 0, "train")
  assert {v.key() for v in train_voices} >= set(train.voices)
  assert not any(spoken_counting.held_out(v) for v in train_voices)


@needs_espeak
def test_each_span_holds_its_word_and_the_pauses_are_silent(written):
  data = written[0]["train"]
  for audio, words, spans, voice in zip(data.audio, data.words_NK, data.spans_NK2,
                                        data.voices):
    np.testing.assert_array_equal(np.diff(words), 1)  # consecutive number words
    assert spans[0, 0] == 0 and spans[-1, 1] == len(audio)
    gaps = spans[1:, 0] - spans[:-1, 1]
    np.testing.assert_array_equal(gaps, int(spoken_counting.PAUSE_S * speech.SAMPLE_RATE))
    for (start, end), (next_start, _) in zip(spans[:-1], spans[1:]):
      assert np.all(audio[end:next_start] == 0)
    # The span of each word is that word as its speaker says it alone (int16 rounding).
    [speaker] = [v for v in spoken_counting.speakers(6, 0) if v.key() == voice]
    for word, (start, end) in zip(words, spans):
      alone = speech.speak(spoken_counting.NUMBER_WORDS[word], speaker)
      np.testing.assert_allclose(audio[start:end], alone, atol=1 / 32767)


@needs_espeak
def test_a_spoken_word_is_trimmed_and_at_16_khz():
  voice = spoken_counting.speakers(1, 0)[0]
  x = speech.speak("seven", voice)
  assert x.dtype == np.float32 and 0.2 < len(x) / speech.SAMPLE_RATE < 1.5
  margin = int(speech.MARGIN_S * speech.SAMPLE_RATE)
  peak = np.abs(x).max()
  assert np.abs(x[:margin]).max() <= speech.SILENCE * peak  # nothing but the margin trimmed
  assert np.abs(x[:2 * margin + 1]).max() > speech.SILENCE * peak


def test_a_missing_espeak_ng_is_one_error_naming_the_package(tmp_path, monkeypatch):
  monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without espeak-ng
  config = spoken_counting.config_for(n_speakers=2, length=4, num_train=1, num_test=1, seed=1)
  with pytest.raises(UserError, match="espeak-ng is not installed.*Debian package espeak-ng"):
    spoken_counting.load("train", config, str(tmp_path / "data"))
  assert not os.listdir(tmp_path / "data") or not any(
      "spoken_counting" in d for d in os.listdir(tmp_path / "data"))
