"""Model families: everything that differs between kinds of generative model in training.

The training loop, checkpoints, summaries, benchmarks and sweeps are shared; they talk to
a kind of model only through its family (`Family` in `scaling.families.base`), which says:

- **config**: `kind` (the `model.kind` it trains), `base_config()` (every field with its
  default: the schema), `check()` (the values of its sections; a `ConfigError` naming the
  field);
- **model and cost**: `make_model(rngs)` (parameters created in their shards under an
  active mesh), `params()`, `flops_per_unit()`, `units_per_step()` and `unit` ("token"
  or "sample": what costs are counted in);
- **data**: `load_data()` (prepared once, then read), `save_artifacts(data, workdir)`
  (what a trained run needs besides config and checkpoints), `train_dataset(...)`,
  `eval_batches(...)`, `synthetic_batch(rng)` (for benchmarks); batches are dicts of
  arrays split over the mesh along their leading (batch) axis;
- **objective and update**: `optimizer()`, `update(model_of, tx, params, opt_state, batch,
  key)` (one step: new params, optimizer state, metrics with `loss` and `grad_norm`),
  `ema_decay` (None: no weight average);
- **held-out metrics**: `eval_sums(model, batch, key)`, added over batches, then
  `eval_metrics(totals)`; `activations(model, batch, key)` for muP's coordinate checks.

What a trained run does lives beside it, registered by the same `kind`: sampling in
`scaling.generate.kinds`, evaluation in `scaling.evals.kinds`. Adding a kind of model is
one family module here, its model in `scaling.models`, and one module in each of those.

`family_for(cfg)` picks the family `cfg.model.kind` names: `lm` (a decoder-only language
model on tokens, `scaling.families.lm`), `dit` (a diffusion transformer on images,
`scaling.families.diffusion`), `gan` (a generator and a discriminator on images, with
two optimizers and its own update, `scaling.families.gan`), `clip` (an image tower and a
text tower in one embedding space, `scaling.families.clip`) or `video` (a diffusion
transformer over clips, `scaling.families.video`) or `codec` (an audio codec that turns
speech into integer codes and back, `scaling.families.codec`) or `audio` (the language
model over a codec's tokens, `scaling.families.audio`). `validate(cfg, devices)` is
the single entry for checking a config against the devices it will run on; every failure
is a `ConfigError` naming the field, so callers report it as one line.
"""

from __future__ import annotations

import jax
import ml_collections
from flax import nnx

from scaling import config as config_lib
from scaling import mesh as mesh_lib
from scaling.config import require
from scaling.families.audio import AudioFamily
from scaling.families.base import Family, check_training
from scaling.families.clip import CLIPFamily
from scaling.families.codec import CodecFamily
from scaling.families.diffusion import DiffusionFamily
from scaling.families.gan import GANFamily
from scaling.families.lm import LMFamily
from scaling.families.video import VideoFamily

__all__ = ["Family", "FAMILIES", "config_hash", "family_for", "run_name", "validate"]

FAMILIES: dict[str, type] = {f.kind: f for f in (LMFamily, DiffusionFamily, GANFamily,
                                                  CLIPFamily, VideoFamily, CodecFamily,
                                                  AudioFamily)}


def family_for(cfg: ml_collections.ConfigDict) -> Family:
  """The family of `cfg.model.kind`. Unknown fields are errors; fields the family's base
  config has and `cfg` lacks are filled in with their defaults."""
  model = cfg.get("model")
  kind = model.get("kind") if isinstance(model, ml_collections.ConfigDict) else None
  require(kind in FAMILIES, "model.kind",
          f"unknown {kind!r}; choose from {', '.join(FAMILIES)}")
  family_class = FAMILIES[kind]
  config_lib.check_fields(cfg, family_class.base_config())
  return family_class(cfg)


def config_hash(cfg: ml_collections.ConfigDict) -> str:
  """The hash of the fields of `cfg` that differ from its family's defaults."""
  return config_lib.config_hash(cfg, family_for(cfg).base_config())


def run_name(cfg: ml_collections.ConfigDict) -> str:
  """`<name>-<config_hash(cfg)>`: adding a field at its default renames no run."""
  return config_lib.run_name(cfg, family_for(cfg).base_config())


def _check_processes(mesh_cfg, devices) -> None:
  """With several processes, names them when the mesh does not match all their devices."""
  processes, local = jax.process_count(), jax.local_device_count()
  sizes = [int(mesh_cfg[a]) for a in mesh_lib.MESH_AXES]
  if processes == 1 or devices is not None or -1 in sizes:
    return
  total = sizes[0] * sizes[1] * sizes[2]
  require(total == processes * local, "mesh",
          f"data*fsdp*tensor = {'*'.join(map(str, sizes))} = {total} but {processes} processes "
          f"x {local} devices = {processes * local} devices take part")


def validate(cfg: ml_collections.ConfigDict, devices=None) -> jax.sharding.Mesh:
  """Checks `cfg` for the given devices (default: all) and returns its mesh."""
  family = family_for(cfg)
  family.check()
  check_training(cfg)
  rules = mesh_lib.complete_rules(cfg.mesh.rules)
  _check_processes(cfg.mesh, devices)
  mesh = mesh_lib.make_mesh(cfg.mesh, devices)
  dp = mesh_lib.data_parallel_size(mesh, rules)
  processes = jax.process_count()
  for field, batch in (("train.batch_size", cfg.train.batch_size),
                       ("eval.batch_size", cfg.eval.batch_size)):
    require(batch % dp == 0, field,
            f"{batch} is not divisible by the data-parallel size {dp} (mesh axes of 'batch')")
    require(batch % processes == 0, field,
            f"{batch} is not divisible by the process count {processes}")
  micro = cfg.train.batch_size // cfg.train.microbatches
  require(micro % dp == 0, "train.microbatches",
          f"each microbatch ({cfg.train.batch_size} / {cfg.train.microbatches} = {micro}) "
          f"must divide over the data-parallel size {dp}")
  # Each process feeds only its own rows of a batch, so the batch must be split at least
  # once per process.
  require(dp % processes == 0, "mesh",
          f"the batch is split {dp} way(s) (mesh axes of 'batch'), not a multiple of the "
          f"{processes} processes; give the data or fsdp axis a multiple of {processes}")
  # Shapes and logical names only, outside the mesh: a table that Flax could not apply
  # to a parameter is reported by `check_divisible`, naming it.
  abstract = nnx.eval_shape(family.make_model)
  mesh_lib.check_divisible(nnx.state(abstract), mesh, rules)
  return mesh
