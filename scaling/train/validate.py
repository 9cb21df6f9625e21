"""Checks a resolved training config before anything is compiled or written.

Every failure is a `ConfigError` naming the field, so the CLI can report it as one line.
"""

from __future__ import annotations

import jax
from flax import nnx

from scaling import families
from scaling import mesh as mesh_lib
from scaling.config import ConfigError, require
from scaling.data import text
from scaling.data.tasks import analogy, arithmetic, mixture
from scaling.families import family_for
from scaling.train import optim

# The fields each section may have; anything else is a typo and an error.
SCHEMA = {
    "": {"name", "seed", "model", "mesh", "data", "train", "eval", "checkpoint"},
    "model": {"kind", "d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff", "mlp",
              "tie_embeddings", "rope_base", "norm_eps", "dtype", "attention",
              "scan_layers", "remat"},
    "mesh": {"data", "fsdp", "tensor", "rules"},
    "data": {"mixture", "ops", "min_digits", "max_digits", "reverse_answer", "letter_levels",
             "word_levels", "eval_fraction", "num_train", "num_eval", "seq_len", "loss_on",
             "vocab_size", "data_dir", "seed"},
    "train": {"steps", "batch_size", "optimizer", "learning_rate", "schedule", "warmup_steps",
              "decay_fraction", "final_lr_fraction", "weight_decay", "b1", "b2", "grad_clip",
              "log_every"},
    "eval": {"every_steps", "batch_size", "max_examples"},
    "checkpoint": {"every_steps", "max_to_keep", "async_save"},
}


def check_schema(cfg, schema: dict[str, set[str]]) -> None:
  """Every section has exactly the fields `schema` lists; the first difference is an error."""
  for section, allowed in schema.items():
    node = cfg[section] if section else cfg
    prefix = f"{section}." if section else ""
    for key in node.keys():
      if key not in allowed:
        raise ConfigError(f"unknown config field: {prefix}{key}")
    for key in sorted(allowed - set(node.keys())):
      raise ConfigError(f"missing config field: {prefix}{key}")


def check_transformer(m) -> None:
  """The checks every transformer config (`model` section) must pass."""
  for field in ("d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff"):
    require(m[field] > 0, f"model.{field}", f"must be positive, got {m[field]}")
  require(m.d_model % m.n_heads == 0, "model.d_model",
          f"d_model={m.d_model} is not divisible by n_heads={m.n_heads}")
  require((m.d_model // m.n_heads) % 2 == 0, "model.d_model",
          f"head dim d_model/n_heads={m.d_model // m.n_heads} must be even for rotary embedding")
  require(m.n_heads % m.n_kv_heads == 0, "model.n_kv_heads",
          f"n_heads={m.n_heads} is not divisible by n_kv_heads={m.n_kv_heads}")
  require(m.mlp in ("gelu", "swiglu"), "model.mlp", f"unknown {m.mlp!r}; choose gelu or swiglu")
  require(m.dtype in ("float32", "bfloat16"), "model.dtype",
          f"unknown {m.dtype!r}; choose float32 or bfloat16")
  require(m.attention in ("xla", "cudnn"), "model.attention",
          f"unknown {m.attention!r}; choose xla or cudnn")
  require(m.attention != "cudnn" or jax.default_backend() == "gpu", "model.attention",
          "cudnn attention needs a GPU")
  require(m.attention != "cudnn" or m.dtype == "bfloat16", "model.attention",
          "cudnn attention needs model.dtype=bfloat16")
  require(m.remat in ("none", "full", "dots_saveable"), "model.remat",
          f"unknown {m.remat!r}; choose none, full or dots_saveable")


def _check_lm_data(d) -> None:
  require(len(d.mixture) > 0, "data.mixture", "needs at least one (source, weight) pair")
  for entry in d.mixture:
    require(len(entry) == 2 and (entry[0] in mixture.TASKS or text.is_text(entry[0])),
            "data.mixture", f"entries are (source, weight) with source one of "
            f"{mixture.TASKS} or 'text:<tfds name>', got {entry!r}")
    require(entry[1] > 0, "data.mixture", f"weights must be positive, got {entry!r}")
  require(all(level in analogy.LEVELS for level in d.letter_levels), "data.letter_levels",
          f"known levels: {', '.join(analogy.LEVELS)}; got {d.letter_levels}")
  require(all(level in analogy.WORD_LEVELS for level in d.word_levels), "data.word_levels",
          f"known levels: {', '.join(analogy.WORD_LEVELS)}; got {d.word_levels}")
  require(all(op in arithmetic.OPS for op in d.ops) and len(d.ops) > 0, "data.ops",
          f"must be a non-empty subset of {arithmetic.OPS}, got {d.ops}")
  require(1 <= d.min_digits <= d.max_digits, "data.min_digits",
          f"need 1 <= min_digits <= max_digits, got {d.min_digits}, {d.max_digits}")
  require(0 < d.eval_fraction < 1, "data.eval_fraction", f"must be in (0, 1), got {d.eval_fraction}")
  require(d.loss_on in ("answer", "all"), "data.loss_on", f"unknown {d.loss_on!r}; choose answer or all")
  require(d.num_train > 0 and d.num_eval > 0, "data.num_train", "split sizes must be positive")
  question, answer = arithmetic.max_chars(tuple(d.ops), d.max_digits)
  needed = question + answer + 1  # bos + question + answer + eos, minus the shifted-out token
  # Analogy lengths depend on the tokenizer; the tokenizing step checks those.
  require(d.seq_len >= needed or "arithmetic" not in dict(d.mixture), "data.seq_len",
          f"seq_len={d.seq_len} is too short for {d.max_digits}-digit problems (needs {needed})")

def check_training(cfg) -> None:
  """The `train`, `eval` and `checkpoint` sections, shared by every family."""
  t = cfg.train
  require(t.steps > 0, "train.steps", f"must be positive, got {t.steps}")
  require(t.batch_size > 0, "train.batch_size", f"must be positive, got {t.batch_size}")
  require(t.learning_rate > 0, "train.learning_rate", f"must be positive, got {t.learning_rate}")
  require(t.schedule in optim.SCHEDULES, "train.schedule",
          f"unknown {t.schedule!r}; choose from {', '.join(optim.SCHEDULES)}")
  require(t.optimizer == "adamw", "train.optimizer", f"unknown {t.optimizer!r}; known: adamw")
  require(t.log_every > 0, "train.log_every", f"must be positive, got {t.log_every}")
  require(cfg.eval.batch_size > 0, "eval.batch_size", "must be positive")
  require(cfg.checkpoint.max_to_keep > 0, "checkpoint.max_to_keep", "must be positive")


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


def validate(cfg, devices=None) -> jax.sharding.Mesh:
  """Validates `cfg` for the given devices (default: all) and returns its mesh."""
  kinds = families.KINDS
  require(cfg.get("model") is not None and cfg.model.get("kind") in kinds, "model.kind",
          f"unknown {cfg.get('model', {}).get('kind')!r}; choose from {', '.join(kinds)}")
  if cfg.model.kind == "lm":
    check_schema(cfg, SCHEMA)
    check_transformer(cfg.model)
    _check_lm_data(cfg.data)
  else:
    from scaling.families import diffusion
    diffusion.check_config(cfg)
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
  # Each process feeds only its own rows of a batch, so the batch must be split at least
  # once per process.
  require(dp % processes == 0, "mesh",
          f"the batch is split {dp} way(s) (mesh axes of 'batch'), not a multiple of the "
          f"{processes} processes; give the data or fsdp axis a multiple of {processes}")
  with mesh_lib.activate(mesh, rules):
    abstract = nnx.eval_shape(family_for(cfg).make_model)
    mesh_lib.check_divisible(nnx.state(abstract), mesh, rules)
  return mesh
