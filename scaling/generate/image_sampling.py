"""Images from a trained image model: batched, sharded over the data axis, saved as a grid.

Batch `i` of a call starts from the noise of key `fold_in(key(seed), i)`; with the
partitionable random-bit generator the numbers do not depend on how the batch is split
over devices, so one device and eight give the same images.
"""

from __future__ import annotations

import dataclasses
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from scaling import config as config_lib
from scaling import files
from scaling import mesh as mesh_lib
from scaling.errors import RequestError, UserError
from scaling.generate import diffusion


# The request field of each sampler setting, for error messages.
FIELDS = {"steps": "steps", "method": "sampler", "eta": "eta", "guidance": "guidance"}


@dataclasses.dataclass(frozen=True)
class SamplerSettings:
  """How to sample: DDIM (with `eta`) or DDPM over `steps` steps, guidance scale."""
  steps: int
  method: str = "ddim"
  eta: float = 0.0
  guidance: float = 1.0

  @classmethod
  def from_config(cls, diffusion_cfg, **overrides) -> "SamplerSettings":
    """The run's defaults (`config.diffusion`), with any non-None override applied."""
    base = dict(steps=diffusion_cfg.sample_steps, method=diffusion_cfg.sampler,
                eta=diffusion_cfg.eta, guidance=diffusion_cfg.guidance)
    base.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**base)


def check_labels(labels, num_classes: int) -> np.ndarray:
  labels = np.asarray(labels, np.int32).reshape(-1)
  bad = labels[(labels < 0) | (labels >= num_classes)]
  if bad.size:
    raise UserError(f"unknown class id {int(bad[0])}: this model has classes 0..{num_classes - 1}")
  return labels


def schedule_of(cfg) -> diffusion.Schedule:
  """The noise schedule a diffusion run was trained with."""
  return diffusion.schedule_for(cfg.diffusion)


def check_settings(run, settings: SamplerSettings) -> None:
  """Fails naming the request field of an impossible setting for this run."""
  try:
    diffusion.check_sampling(schedule_of(run.cfg), steps=settings.steps,
                             method=settings.method, eta=settings.eta,
                             guidance=settings.guidance,
                             prediction=run.cfg.diffusion.prediction)
  except diffusion.SettingError as e:  # The settings came from a request: name its field.
    field = FIELDS.get(e.setting, e.setting)
    raise RequestError(field, f"{{field}}: {e}") from None


def generate(run, labels, settings: SamplerSettings, *, seed: int = 0, batch: int = 256,
             shape: tuple[int, ...] | None = None,
             known: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
  """One image per label, float32 in [-1, 1], [N, H, W, C] on the host (or of each
  example's `shape`: a clip's [F, H, W, C]). `known` = (x0 [N, ...], mask [N, ...], 1
  where known) fixes those entries and draws the rest consistent with them."""
  check_settings(run, settings)
  schedule = schedule_of(run.cfg)
  d = run.cfg.data
  shape = shape or (d.image_size, d.image_size, d.channels)
  if len(np.asarray(labels).reshape(-1)) == 0:
    return np.zeros((0, *shape), np.float32)

  def draw(model, key, labels_B, *known_B):
    return diffusion.sample(model, schedule, key, (labels_B.shape[0], *shape), labels_B,
                            steps=settings.steps, method=settings.method,
                            eta=settings.eta, guidance=settings.guidance,
                            null_class=model.num_classes,  # the DiT's extra class row
                            prediction=run.cfg.diffusion.prediction,
                            known=tuple(known_B) or None)

  extras = () if known is None else tuple(np.asarray(a, np.float32) for a in known)
  return draw_batches(run, labels, draw, (settings, shape, known is not None), seed=seed,
                      batch=batch, extras=extras)


def draw_batches(run, labels, draw, name, *, seed: int = 0, batch: int = 256,
                 extras: tuple[np.ndarray, ...] = ()) -> np.ndarray:
  """One image per label from `draw(model, key, labels_B, *extras_B) -> images_BHWC`, in
  batches split over every device of the run's mesh; batch `i` draws from
  `fold_in(key(seed), i)`. `extras` are per-label arrays [N, ...] batched with the labels.
  `name` (hashable) tells one way of drawing from another, for the compile cache."""
  labels = check_labels(labels, run.cfg.data.num_classes)
  shards = run.mesh.devices.size
  batch = min(batch, math.ceil(len(labels) / shards) * shards)
  batch = math.ceil(batch / shards) * shards  # every device gets the same share
  graphdef, params = nnx.split(run.model)
  batch_sharding = NamedSharding(run.mesh, PartitionSpec(run.mesh.axis_names))
  compiled = _compiled(run, graphdef, draw, name, batch, len(extras))
  out = []

  def padded(rows):
    return jax.device_put(jnp.asarray(np.pad(rows, [(0, batch - len(rows))]
                                             + [(0, 0)] * (rows.ndim - 1))), batch_sharding)

  with mesh_lib.activate(run.mesh, run.rules):
    for i, start in enumerate(range(0, len(labels), batch)):
      chunk = labels[start:start + batch]
      key = jax.random.fold_in(jax.random.key(seed), i)
      images = compiled(params, key, padded(chunk),
                        *(padded(e[start:start + batch]) for e in extras))
      out.append(np.asarray(jax.device_get(images))[:len(chunk)])
  if not out:  # no labels
    d = run.cfg.data
    return np.zeros((0, d.image_size, d.image_size, d.channels), np.float32)
  return np.concatenate(out)


# Compiled samplers by (config, way of drawing, batch, devices): the trained and the
# untrained model of one config share one compilation.
_COMPILED: dict = {}


def _compiled(run, graphdef, draw, name, batch: int, n_extras: int = 0):
  """The jitted `draw(params, key, labels_B, *extras_B) -> images`, compiled once per
  shape."""
  key = (config_lib.config_hash(run.cfg), graphdef, name, batch, n_extras,
         tuple(d.id for d in run.mesh.devices.flat))
  if key not in _COMPILED:
    batch_sharding = NamedSharding(run.mesh, PartitionSpec(run.mesh.axis_names))
    replicated = NamedSharding(run.mesh, PartitionSpec())
    _COMPILED[key] = jax.jit(
        lambda params, key, labels_B, *extras_B: draw(nnx.merge(graphdef, params), key,
                                                      labels_B, *extras_B),
        in_shardings=(None, replicated) + (batch_sharding,) * (1 + n_extras),
        out_shardings=batch_sharding)
  return _COMPILED[key]


def grid(images_NHWC: np.ndarray, columns: int | None = None, pad: int = 1) -> np.ndarray:
  """Tiles images (in [-1, 1]) into one [rows*H, columns*W, C] array in [0, 1]."""
  n, h, w, c = images_NHWC.shape
  columns = columns or math.ceil(math.sqrt(n))
  rows = math.ceil(n / columns)
  out = np.ones((rows * (h + pad) + pad, columns * (w + pad) + pad, c), np.float32)
  for i, image in enumerate(np.clip((images_NHWC + 1) / 2, 0, 1)):
    r, col = divmod(i, columns)
    out[pad + r * (h + pad):pad + r * (h + pad) + h,
        pad + col * (w + pad):pad + col * (w + pad) + w] = image
  return out


def check_output(path: str) -> None:
  """Fails before sampling when the grid could not be written."""
  if not path.lower().endswith(".png"):
    raise RequestError("out", f"{{field}} must name a .png file, got {path}")
  files.check_writable(path, "image grid")


def save_grid(images_NHWC: np.ndarray, path: str, columns: int | None = None,
              scale: int = 4) -> None:
  """Writes the images as one PNG, each pixel drawn `scale` x `scale` (small images)."""
  import matplotlib.image
  tiles = grid(images_NHWC, columns)
  tiles = tiles.repeat(scale, axis=0).repeat(scale, axis=1)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  if tiles.shape[-1] == 1:
    matplotlib.image.imsave(path, tiles[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
  else:
    matplotlib.image.imsave(path, tiles)


def sample_grid(run, request, draw, tag: str, what: str) -> list[str]:
  """`scaling sample` for image kinds: `n` images of each requested class (default: of
  every class) as one PNG grid, one row per class when there are several.
  `draw(labels)` makes the images; `tag` goes in the default file name, `what` in the
  line returned."""
  if request.prompts:
    raise RequestError("prompts", f"{run.workdir} holds an image model: give classes, "
                       "not {field}")
  n = request.count(default=16)
  classes = list(request.classes) or list(range(run.cfg.data.num_classes))
  labels = check_labels(np.repeat(classes, n), run.cfg.data.num_classes)
  path = request.out or os.path.join(
      run.workdir, "samples",
      f"class{'-'.join(map(str, classes)) if request.classes else 'all'}-{tag}"
      f"-seed{request.seed}.png")
  check_output(path)
  out = draw(labels)
  save_grid(out, path, columns=n if len(classes) > 1 else None)
  return [f"wrote {len(out)} images ({what}) to {path}"]


def inference_devices(devices: list) -> list:
  return devices  # image samplers split their batch over every device


def load_artifacts(workdir: str) -> dict:
  del workdir  # Images need no tokenizer; the config says everything else.
  return {}
