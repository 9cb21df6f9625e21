"""Sample quality of an image model per sampler setting (a diffusion run's `scaling eval`).

eval.json has the same shape as for language models ({task: {subset: {n, metrics,
chance}}}), so sweeps, tables and plots read both:

  image_quality/<setting>   class_accuracy, fd, kid of `n` generated images per class
      against the held-out real images, and the metrics that see mode collapse
      (`scaling.evals.manifold`): precision, recall, density, coverage in classifier-feature
      space, class_coverage and class_balance of the classifier's labels; `chance` holds
      1/classes for class_accuracy and, for the first (the config's) setting, the fd and
      kid of the same architecture untrained. A diffusion setting is named
      <sampler><steps>/g<guidance>; a GAN has one, `generator`.
  real_data/test_vs_train                      fd and kid of held-out against training
      images: the floor a perfect generator would reach at these sample sizes
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
from tqdm import tqdm

from scaling import mesh as mesh_lib
from scaling.errors import RequestError
from scaling.data import image_sets as images_lib
from scaling.evals import image_features as image_metrics
from scaling.evals import aggregate, manifold, metrics
from scaling.generate import image_sampling as generate_lib
from scaling.generate.image_sampling import SamplerSettings

KID_SUBSETS = 50


def _floats(text: str | None, field: str, kind=float) -> list | None:
  if text is None:
    return None
  try:
    return [kind(v) for v in str(text).split(",") if v.strip()]
  except ValueError:
    raise RequestError(field, f"{{field}}: expected comma-separated numbers, got {text!r}"
                       ) from None


def check_request(request) -> None:
  """The checks of an eval request that hold for every image kind."""
  request.check()
  other = [s for s in (request.suites or ()) if s != "images"]
  if other or request.task_files:
    raise RequestError("suites", f"an image model's {{field}} is 'images', not "
                       f"{', '.join([*other, *request.task_files])}")
  if request.n is not None and request.n < 2:
    raise RequestError("n", f"{{field}} must be at least 2 images per class for image "
                       f"metrics, got {request.n}")


def settings_grid(diffusion_cfg, *, samplers: str | None = None, steps: str | None = None,
                  guidance: str | None = None, eta: float | None = None) -> list[SamplerSettings]:
  """The settings to score, one axis at a time (comma-separated lists; None: the config's).

  Every sampler at every step count, at the config's guidance; then every guidance scale
  at the config's sampler and step count. The config's own setting comes first.
  """
  default = SamplerSettings.from_config(diffusion_cfg, eta=eta)
  sampler_list = [s for s in (samplers or default.method).split(",") if s]
  steps_list = _floats(steps, "steps", int) or [default.steps]
  guidance_list = _floats(guidance, "guidance") or [default.guidance]
  grid = [default]
  grid += [dataclasses.replace(default, method=m, steps=n) for m in sampler_list
           for n in steps_list]
  grid += [dataclasses.replace(default, guidance=g) for g in guidance_list]
  return list(dict.fromkeys(grid))  # in order, without repeats


def subset_name(s: SamplerSettings) -> str:
  eta = f"-eta{s.eta:g}" if s.method == "ddim" and s.eta else ""
  return f"{s.method}{s.steps}{eta}/g{s.guidance:g}"


def fd_summary(gen_ND: np.ndarray, real_ND: np.ndarray) -> dict:
  """FD as a point estimate: its interval is degenerate (low = high = the estimate).

  Resampling does not give FD an honest interval (duplicated images shrink the fitted
  covariance, so every bootstrap FD lies above the estimate); KID's spread over random
  subsets is the uncertainty to read.
  """
  fd = image_metrics.frechet_distance(gen_ND, real_ND)
  return {"mean": fd, "ci_low": fd, "ci_high": fd, "n": int(len(gen_ND))}


def kid_summary(gen_ND: np.ndarray, real_ND: np.ndarray, seed: int) -> dict:
  """KID, with mean +- one standard deviation over its random subsets as the interval."""
  kid, std = image_metrics.kernel_distance(gen_ND, real_ND, num_subsets=KID_SUBSETS, seed=seed)
  return {"mean": kid, "ci_low": kid - std, "ci_high": kid + std, "n": int(len(gen_ND))}


def _untrained(run):
  """The same architecture and seed before training: the 'chance' level of FD and KID."""
  with mesh_lib.activate(run.mesh, run.rules):
    model = run.family.make_model()
  return dataclasses.replace(run, model=model)


def point(value: float, n: int) -> dict:
  """A metric of a whole set, reported without an interval."""
  return {"mean": float(value), "ci_low": float(value), "ci_high": float(value), "n": int(n)}


def collapse_metrics(gen_ND, real_ND, gen_labels_N, real_labels_N, num_classes: int) -> dict:
  """Precision, recall, density and coverage of the generated features against the real
  ones (k = 3), and class coverage / balance of the classifier's labels of the samples."""
  pr = manifold.precision_recall(real_ND, gen_ND, k=3)
  classes = manifold.class_coverage(gen_labels_N,
                                    np.bincount(real_labels_N, minlength=num_classes))
  n = len(gen_ND)
  out = {k: point(pr[k], n) for k in ("precision", "recall", "density", "coverage")}
  out.update({k: point(classes[k], n) for k in ("class_coverage", "class_balance")})
  return out


def evaluate(run, settings_list: list, classifier: image_metrics.Classifier, *, generate=None,
             name=None, n_per_class: int = 100, batch: int = 256, seed: int = 0,
             progress: bool = True) -> dict:
  """Samples and scores `run` for each setting; returns the `tasks` part of eval.json.

  `generate(run, labels, setting, seed=, batch=)` draws one image per label (default: the
  diffusion samplers, settings `SamplerSettings`); `name(setting)` names its subset.
  `classifier` (`scaling.evals.image_features.classifier_for`) provides features and labels.
  """
  generate = generate or generate_lib.generate
  name = name or subset_name
  if n_per_class < 2:
    raise RequestError("n", f"{{field}} must be at least 2 images per class for image "
                       f"metrics, got {n_per_class}")
  d = run.cfg.data
  real_test = images_lib.load(d, "test")
  real_train = images_lib.load(d, "train")
  real_ND = classifier.features(real_test.images_NHWC)
  real_labels = real_test.labels_N
  labels = np.repeat(np.arange(d.num_classes), n_per_class)
  untrained = _untrained(run)
  result = {"image_quality": {}}
  for i, s in enumerate(tqdm(settings_list, disable=not progress, desc="sampler settings",
                            unit="setting")):
    subset = {"n": len(labels), "metrics": {}, "chance": {"class_accuracy": 1.0 / d.num_classes}}
    # The untrained model's scores (its FD and KID 'chance') for the first setting only:
    # they put the headline in context; the other settings compare with it.
    for which, model_run in (("trained", run), ("untrained", untrained))[:2 if i == 0 else 1]:
      generated = generate(model_run, labels, s, seed=seed, batch=batch)
      gen_ND = classifier.features(generated)
      if which == "untrained":
        subset["chance"].update(
            fd=image_metrics.frechet_distance(gen_ND, real_ND),
            kid=image_metrics.kernel_distance(gen_ND, real_ND, num_subsets=KID_SUBSETS,
                                              seed=seed)[0])
        continue
      predicted = classifier.predict(generated)
      subset["metrics"] = {"class_accuracy": metrics.summarize((predicted == labels).astype(float)),
                           "fd": fd_summary(gen_ND, real_ND),
                           "kid": kid_summary(gen_ND, real_ND, seed),
                           **collapse_metrics(gen_ND, real_ND, predicted, real_labels,
                                              d.num_classes)}
    result["image_quality"][name(s)] = subset
  train_ND = classifier.features(real_train.images_NHWC)
  result["real_data"] = {"test_vs_train": {
      "n": len(real_ND), "chance": {},
      "metrics": {"fd": fd_summary(train_ND, real_ND),
                  "kid": kid_summary(train_ND, real_ND, seed),
                  **collapse_metrics(train_ND, real_ND, classifier.predict(
                      real_train.images_NHWC), real_labels, d.num_classes)}}}
  return result


def write(run, path: str, result: dict, settings_list, n_per_class: int,
          classifier_accuracy: float, flags: dict[str, str | None]) -> str:
  """Writes eval.json; `flags` are the sampler lists asked for, so it can be re-run."""
  meta = {"workdir": os.path.abspath(run.workdir), "step": run.step, "suites": ["images"],
          "n_per_subset": n_per_class, "classifier_accuracy": classifier_accuracy,
          "flags": {k: v for k, v in flags.items() if v is not None},
          "settings": [dataclasses.asdict(s) if dataclasses.is_dataclass(s) else s
                       for s in settings_list]}
  aggregate.write(path, result, meta)
  return path
