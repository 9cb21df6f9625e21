"""Decoder-only LM on generated arithmetic (3-digit addition, reversed answers).

Usage: `scaling train --config=configs/lm/arithmetic.py:size=s5 --workdir=/tmp/run`.
The argument is a comma-separated list of `key=value` presets: `size` picks a row of
SIZES, `tasks` the training mixture (`add`: 3-digit addition; `mix`: addition, letter-string
and word analogies). With no argument the default is `size=s5,tasks=add` (~117k
parameters), which learns held-out 3-digit addition to 100% exact match in about a
minute on a laptop CPU.
"""

import ml_collections

# name: (d_model, n_layers, n_heads, d_ff). Parameter counts with the 288-token vocab
# of `tasks=add` and tied embeddings (see `scaling.models.counting`). On the task mixture,
# 3-digit addition appears between s1 and s3; s5 learns it alone in about a minute.
SIZES = {
    "s0": (12, 1, 2, 48),      # ~5k
    "s1": (16, 1, 2, 64),      # ~8k
    "s2": (24, 2, 2, 96),      # ~21k
    "s3": (32, 2, 4, 128),     # ~34k
    "s4": (48, 2, 4, 192),     # ~69k
    "s5": (64, 2, 4, 256),     # ~117k
    "s6": (96, 3, 4, 384),     # ~360k
    "s7": (128, 4, 4, 512),    # ~830k
    "s8": (192, 5, 6, 768),    # ~2.3M
}

# Logical axis -> mesh axes. Batch is split over both data-parallel axes; FSDP shards
# the embedding dimension of every weight; tensor parallelism splits heads, MLP and vocab.
DEFAULT_RULES = (
    ("batch", ("data", "fsdp")),
    ("length", None),
    ("act_embed", None),
    ("act_heads", "tensor"),
    ("act_mlp", "tensor"),
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("heads", "tensor"),
    ("kv", "tensor"),
    ("head_dim", None),
    ("mlp", "tensor"),
    ("layers", None),
)


# `tasks=` presets: what the model is trained on.
MIXTURES = {
    "add": (("arithmetic", 1.0),),
    "mix": (("arithmetic", 0.5), ("letter_string", 0.3), ("word_analogy", 0.2)),
}


def _parse_arg(arg):
  presets = {"size": "s5", "tasks": "add"}
  for item in filter(None, (arg or "").split(",")):
    key, sep, value = item.partition("=")
    if not sep or key not in presets:
      raise ValueError(f"unknown preset {item!r}; expected size=<{'|'.join(SIZES)}>,"
                       f"tasks=<{'|'.join(MIXTURES)}>")
    presets[key] = value
  if presets["size"] not in SIZES:
    raise ValueError(f"unknown size {presets['size']!r}; choose from {', '.join(SIZES)}")
  if presets["tasks"] not in MIXTURES:
    raise ValueError(f"unknown tasks {presets['tasks']!r}; choose from {', '.join(MIXTURES)}")
  return presets


def get_config(arg=None):
  presets = _parse_arg(arg)
  d_model, n_layers, n_heads, d_ff = SIZES[presets["size"]]
  cfg = ml_collections.ConfigDict()
  mixed = presets["tasks"] == "mix"
  cfg.name = f"{'tasks' if mixed else 'arithmetic'}-{presets['size']}"
  cfg.seed = 0

  cfg.model = ml_collections.ConfigDict(dict(
      kind="lm",
      d_model=d_model,
      n_layers=n_layers,
      n_heads=n_heads,
      n_kv_heads=n_heads,        # fewer than n_heads = grouped-query attention
      d_ff=d_ff,
      mlp="gelu",                # gelu | swiglu
      tie_embeddings=True,
      rope_base=10_000.0,
      norm_eps=1e-6,
      dtype="float32",           # compute dtype; parameters are always float32
      attention="xla",           # xla | cudnn (jax.nn.dot_product_attention)
      scan_layers=False,         # True: one lax.scan over layers (faster compiles when deep)
      remat="none",              # none | full | dots_saveable
  ))

  cfg.mesh = ml_collections.ConfigDict(dict(
      data=-1, fsdp=1, tensor=1, rules=DEFAULT_RULES))

  cfg.data = ml_collections.ConfigDict(dict(
      mixture=MIXTURES[presets["tasks"]],  # (task, weight): arithmetic, letter_string, word_analogy
      ops=("+",),
      min_digits=3,
      max_digits=3,
      reverse_answer=True,       # least-significant digit first, as the model adds
      letter_levels=("basic",),  # letter-string analogy levels (scaling.data.tasks.analogy)
      word_levels=("basic",),    # word-analogy levels
      eval_fraction=0.02,        # share of all problems held out; decided by hash
      num_train=200_000,
      num_eval=2_000,            # per task
      seq_len=32 if mixed else 16,
      loss_on="answer",          # answer | all
      vocab_size=384 if mixed else 288,
      data_dir="",               # "" = $SCALING_DATA_DIR or ~/.cache/scaling/data
      seed=0,                    # problems and their order; shared by every model size
  ))

  cfg.train = ml_collections.ConfigDict(dict(
      steps=1_500,
      batch_size=128,
      optimizer="adamw",
      learning_rate=3e-3,
      schedule="cosine",         # cosine | constant | wsd
      warmup_steps=100,
      decay_fraction=0.2,        # wsd: share of steps spent decaying
      final_lr_fraction=0.1,
      weight_decay=0.1,
      b1=0.9,
      b2=0.99,
      grad_clip=1.0,
      log_every=50,
  ))

  cfg.eval = ml_collections.ConfigDict(dict(
      every_steps=500,
      batch_size=256,
      max_examples=2_000,
  ))

  cfg.checkpoint = ml_collections.ConfigDict(dict(
      every_steps=1_000,
      max_to_keep=2,
      async_save=True,
  ))
  return cfg
