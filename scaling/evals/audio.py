"""Evaluating a trained audio language model on spoken counting.

Suite `counting` (default): held-out speakers' utterances ("three, four, five, six") cut
where their last word starts are the prompts. The model draws a continuation (a second,
at the request's temperature and top-p); the codec decodes prompt and continuation, the
first word after the prompt is cut out (`spoken_words.first_word`) and the recogniser
trained on the codec's decodings (`recogniser.npz` beside the codec, trained on first use)
says which number it is. Subsets:
- `model`: `exact_match` (the continuation says the next number), with a bootstrap
  interval and chance 1/21, and `log_prob`, the continuous twin: the mean log-probability
  per token the model gives the true continuation (teacher-forced, to the word's end);
- `codec`: the same judge on the codec's decoding of the true continuation, the ceiling a
  perfect model would reach through this codec and recogniser.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from scaling.data import audio_tokens
from scaling.data.speech import SAMPLE_RATE
from scaling.data.spoken_counting import NUMBER_WORDS
from scaling.errors import RequestError
from scaling.evals import aggregate, codec as codec_eval, metrics, spoken_words
from scaling.evals.request import EvalRequest
from scaling.generate import audio as audio_sampling, sampling

SUITES = ("counting",)
DEFAULT_N = 200  # held-out utterances when -n is not given


def check(cfg, request: EvalRequest) -> None:
  del cfg
  request.check()
  request.unset(("task_files", "samplers", "steps", "guidance"),
                "is not taken by an audio model")
  for name in request.suites or ():
    if name not in SUITES:
      raise RequestError("suites", f"unknown suite {name!r} for an audio model; known: "
                         f"{', '.join(SUITES)}")


def recogniser_for(codec, progress: bool = True):
  """The codec's recogniser, trained (and saved beside the codec) on first use."""
  path = os.path.join(codec.workdir, codec_eval.RECOGNISER)
  if os.path.exists(path):
    return spoken_words.load(path)
  return codec_eval.train_recogniser(codec, progress=progress)


def continuation_log_probs(run, prompts: audio_sampling.Prompts, batch: int) -> np.ndarray:
  """[N] the mean log-probability per token of each true continuation given its prompt."""
  d = run.cfg.data
  levels = d.levels
  rows = [audio_tokens.to_tokens(c[:int(e)], d.codebook_size)
          for c, e in zip(prompts.codes, prompts.end_frames)]
  length = max(map(len, rows))

  @jax.jit
  def token_log_probs(tokens_BL):
    logits = run.model(tokens_BL[:, :-1]).astype(jnp.float32)
    log_p = jax.nn.log_softmax(logits, -1)
    return jnp.take_along_axis(log_p, tokens_BL[:, 1:, None], -1)[..., 0]

  out = []
  for start in range(0, len(rows), batch):
    part = rows[start:start + batch]
    tokens = np.zeros((batch, length), np.int32)
    for i, row in enumerate(part):
      tokens[i, :len(row)] = row
    log_p = np.asarray(token_log_probs(tokens))
    for i, row in enumerate(part):
      first = 1 + int(prompts.cut_frames[start + i]) * levels  # first continuation token
      out.append(log_p[i, first - 1:len(row) - 1].mean())
  return np.array(out)


def heard(run, recogniser, prompts: audio_sampling.Prompts, drawn: list[np.ndarray]
          ) -> np.ndarray:
  """[N] the word the recogniser hears first after each prompt in its continued clip."""
  hop = run.artifacts["codec"].model.hop
  waves = audio_sampling.waveforms(run, [
      np.concatenate([prompt_codes[:int(cut)], codes])
      for codes, prompt_codes, cut in zip(drawn, prompts.codes, prompts.cut_frames)])
  return spoken_words.predict(recogniser, [
      spoken_words.first_word(wave[int(cut) * hop:])
      for wave, cut in zip(waves, prompts.cut_frames)])


def evaluate(run, request: EvalRequest, *, progress: bool = True) -> dict:
  """Scores the first `n` held-out utterances (default 200); writes eval.json."""
  check(run.cfg, request)
  n = request.n or DEFAULT_N
  codec = run.artifacts["codec"]
  recogniser = recogniser_for(codec, progress)
  prompts = audio_sampling.held_out_prompts(run, n)
  frames = round(audio_sampling.CONTINUATION_S * SAMPLE_RATE / codec.model.hop)
  cfg = sampling.SamplingConfig(temperature=request.temperature, top_p=request.top_p)
  drawn = []
  for start in range(0, len(prompts.tokens), request.batch):
    drawn += audio_sampling.continue_tokens(run, prompts.tokens[start:start + request.batch],
                                            frames, cfg, seed=request.seed + start)
  said = heard(run, recogniser, prompts, drawn)
  truth = [c[int(cut):] for c, cut in zip(prompts.codes, prompts.cut_frames)]
  ceiling = heard(run, recogniser, prompts, truth)
  chance = {"exact_match": 1 / len(NUMBER_WORDS)}
  log_prob = continuation_log_probs(run, prompts, request.batch)
  result = {"counting": {
      "model": {"n": len(said), "chance": chance, "metrics": {
          "exact_match": metrics.summarize(said == prompts.words),
          "log_prob": metrics.summarize(log_prob)}},
      "codec": {"n": len(said), "chance": chance, "metrics": {
          "exact_match": metrics.summarize(ceiling == prompts.words)}},
  }}
  aggregate.write(run.eval_path, result, {
      "step": run.step, "n": len(said), "temperature": request.temperature,
      "top_p": request.top_p, "seed": request.seed,
      "heard": [NUMBER_WORDS[w] for w in said], "expected": [NUMBER_WORDS[w] for w in
                                                             prompts.words]})
  return result
