"""Evaluating a trained diffusion transformer: sample quality at each sampler setting
(`scaling.evals.image_quality`) and held-out denoising error at fixed noise levels."""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from scaling import mesh as mesh_lib
from scaling.data import image_sets
from scaling.evals import image_quality, metrics
from scaling.evals.image_features import classifier_for
from scaling.evals.request import EvalRequest
from scaling.generate import diffusion, image_sampling

SUITES = ("images",)
DEFAULT_N = 100  # samples per class when -n is not given


def check(cfg, request: EvalRequest) -> None:
  image_quality.check_request(request)
  image_quality.settings_grid(cfg.diffusion, samplers=request.samplers, steps=request.steps,
                              guidance=request.guidance)


def evaluate(run, request: EvalRequest, *, progress: bool = True) -> dict:
  """Scores `n` images per class (default 100) at every setting; writes eval.json."""
  check(run.cfg, request)
  settings = image_quality.settings_grid(run.cfg.diffusion, samplers=request.samplers,
                                         steps=request.steps, guidance=request.guidance)
  for s in settings:  # every setting, before the first image is drawn
    image_sampling.check_settings(run, s)
  n_per_class = request.n or DEFAULT_N
  classifier = classifier_for(run.cfg.data)
  result = image_quality.evaluate(run, settings, classifier, n_per_class=n_per_class,
                                  batch=request.batch, progress=progress)
  real_test = image_sets.load(run.cfg.data, "test")
  result["denoising"] = denoising(run, real_test, batch=request.batch, seed=0)
  image_quality.write(run, run.eval_path, result, settings, n_per_class,
                      classifier.accuracy, {"sampler": request.samplers,
                                            "steps": request.steps,
                                            "guidance": request.guidance})
  return result


def denoising(run, real: image_sets.ImageSet, *, batch: int, seed: int) -> dict:
  """Per-example held-out denoising error at the config's fixed timesteps, with CIs."""
  graphdef, params = nnx.split(run.model)
  schedule = image_sampling.schedule_of(run.cfg)
  timesteps = tuple(int(t) for t in run.cfg.diffusion.eval_timesteps)
  shards = run.mesh.devices.size
  batch = -(-min(batch, len(real)) // shards) * shards
  sharding = NamedSharding(run.mesh, PartitionSpec(run.mesh.axis_names))

  @jax.jit
  def errors(params, images_B, labels_B, key):
    return diffusion.denoising_errors(
        nnx.merge(graphdef, params), images_B, labels_B, key, schedule,
        prediction=run.cfg.diffusion.prediction, timesteps=timesteps)

  per_t = []
  with mesh_lib.activate(run.mesh, run.rules):
    for i, start in enumerate(range(0, len(real), batch)):
      index = np.minimum(np.arange(start, start + batch), len(real) - 1)
      rows = real.rows(index)
      err_TB = errors(params, jax.device_put(rows["images"], sharding),
                      jax.device_put(rows["labels"], sharding),
                      jax.random.fold_in(jax.random.key(seed), i))
      per_t.append(np.asarray(err_TB)[:, :min(batch, len(real) - start)])
  err_TN = np.concatenate(per_t, axis=1)
  return {f"t{t}": {"n": err_TN.shape[1], "metrics": {"mse": metrics.summarize(err_TN[i])},
                    "chance": {}}
          for i, t in enumerate(timesteps)}
