"""Sampling a trained language model: its tokenizer, the device it decodes on, and
`scaling sample`'s completions of prompts."""

from __future__ import annotations

import logging
import os

from scaling.data.tasks import mixture
from scaling.data.tokenizer import Tokenizer
from scaling.errors import RequestError, UserError
from scaling.generate import completion, sampling
from scaling.generate.request import SampleRequest


log = logging.getLogger("scaling")


def load_artifacts(workdir: str) -> dict:
  """The tokenizer the run was trained with (written beside its checkpoints)."""
  path = os.path.join(workdir, "tokenizer.model")
  if not os.path.exists(path):
    raise UserError(f"{workdir} has no tokenizer.model: a language-model run needs the "
                    "tokenizer it was trained with")
  try:
    return {"tokenizer": Tokenizer.load(path)}
  except (OSError, RuntimeError) as e:
    raise UserError(f"cannot read {path}: {e}") from None


def inference_devices(devices: list) -> list:
  return devices[:1]  # tiny models: one device decodes fastest


def sample(run, request: SampleRequest) -> list[str]:
  """Completions of every prompt, `n` each, as prompt + completion."""
  request.unset(("classes", "steps", "sampler", "eta", "guidance", "out"),
                f"is for image models; {run.workdir} holds a language model")
  n = request.count(default=1)
  cfg = sampling.from_request(request)
  if not request.prompts:
    raise RequestError("prompts", "give {field}: a language model completes prompts")
  for prompt in request.prompts:
    if (why := mixture.outside_training(prompt, run.cfg.data)) is not None:
      log.warning("prompt %r lies outside what this model was trained on: %s; expect a "
                  "wrong answer", prompt, why)
  completions = completion.complete(run, list(request.prompts), n=n, cfg=cfg,
                                    max_new_tokens=request.max_new_tokens, seed=request.seed)
  return [f"{prompt}{out}" for prompt, outs in zip(request.prompts, completions)
          for out in outs]
