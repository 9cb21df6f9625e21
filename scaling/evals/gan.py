"""Evaluating a trained GAN: FD, KID, class accuracy, precision, recall, density, coverage
and class coverage of the generator's images (`scaling.evals.image_quality`)."""

from __future__ import annotations

from scaling.evals import image_quality
from scaling.evals.image_features import classifier_for
from scaling.evals.request import EvalRequest
from scaling.generate import gan as gan_sampling

SUITES = ("images",)
DEFAULT_N = 100  # samples per class when -n is not given


def check(cfg, request: EvalRequest) -> None:
  del cfg
  image_quality.check_request(request)
  request.unset(("samplers", "steps", "guidance"), gan_sampling.NOT_FOR_GANS)


def evaluate(run, request: EvalRequest, *, progress: bool = True) -> dict:
  """Scores `n` images per class (default 100); writes eval.json."""
  check(run.cfg, request)
  n_per_class = request.n or DEFAULT_N
  classifier = classifier_for(run.cfg.data)
  setting = gan_sampling.SETTING
  result = image_quality.evaluate(run, [setting], classifier, generate=gan_sampling.generate,
                                  name=str, n_per_class=n_per_class, batch=request.batch,
                                  progress=progress)
  image_quality.write(run, run.eval_path, result, [{"method": setting}], n_per_class,
                      classifier.accuracy, {})
  return result
