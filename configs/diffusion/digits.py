"""Class-conditional DiT on scikit-learn's 8x8 handwritten digits (1,797 images).

Usage: `scaling train --config=configs/diffusion/digits.py:size=d3 --workdir=/tmp/dit`.
The argument is a comma-separated list of `key=value` presets: `size` picks a row of
SIZES, `data` the dataset (`digits`, built in; `mnist`, `cifar10` read from TFDS data the
user prepared). Sampling: `scaling sample --workdir=/tmp/dit --class 3 -n 64`.
"""

import ml_collections

# name: (d_model, n_layers, n_heads, d_ff). Parameter counts at 8x8 with patch size 2
# (see `scaling.models.counting.dit_params`); the adaLN projections (6 D^2 per layer)
# are a large share at these widths.
SIZES = {
    "d0": (16, 1, 2, 64),       # ~10k
    "d1": (32, 2, 2, 128),      # ~49k
    "d2": (48, 2, 4, 192),      # ~104k
    "d3": (64, 3, 4, 256),      # ~253k: the default, about 4 minutes on 2 CPU cores
    "d4": (96, 4, 4, 384),      # ~720k
    "d5": (128, 6, 4, 512),     # ~1.9M
}

# Native size, channels and patch size of each dataset.
DATASETS = {"digits": (8, 1, 2), "mnist": (28, 1, 4), "cifar10": (32, 3, 4)}

# Logical axis -> mesh axes, as for the LM: batch over the data-parallel axes, FSDP on
# the embedding dimension, tensor parallelism over heads and MLP. Patch and conditioning
# input dimensions are small and stay replicated.
DEFAULT_RULES = (
    ("batch", ("data", "fsdp")),
    ("length", None),
    ("act_embed", None),
    ("act_heads", "tensor"),
    ("act_mlp", "tensor"),
    ("embed", "fsdp"),
    ("heads", "tensor"),
    ("kv", "tensor"),
    ("head_dim", None),
    ("mlp", "tensor"),
    ("layers", None),
    ("patch", None),
    ("cond", None),
)


def _parse_arg(arg):
  presets = {"size": "d3", "data": "digits"}
  for item in filter(None, (arg or "").split(",")):
    key, sep, value = item.partition("=")
    if not sep or key not in presets:
      raise ValueError(f"unknown preset {item!r}; expected size=<{'|'.join(SIZES)}>,"
                       f"data=<{'|'.join(DATASETS)}>")
    presets[key] = value
  if presets["size"] not in SIZES:
    raise ValueError(f"unknown size {presets['size']!r}; choose from {', '.join(SIZES)}")
  if presets["data"] not in DATASETS:
    raise ValueError(f"unknown data {presets['data']!r}; choose from {', '.join(DATASETS)}")
  return presets


def get_config(arg=None):
  presets = _parse_arg(arg)
  d_model, n_layers, n_heads, d_ff = SIZES[presets["size"]]
  image_size, channels, patch_size = DATASETS[presets["data"]]
  cfg = ml_collections.ConfigDict()
  cfg.name = f"{presets['data']}-dit-{presets['size']}"
  cfg.seed = 0

  cfg.model = ml_collections.ConfigDict(dict(
      kind="dit",
      d_model=d_model,
      n_layers=n_layers,
      n_heads=n_heads,
      n_kv_heads=n_heads,
      d_ff=d_ff,
      mlp="gelu",                # gelu | swiglu
      norm_eps=1e-6,
      dtype="float32",           # compute dtype; parameters are always float32
      attention="xla",           # xla | cudnn
      scan_layers=False,
      remat="none",              # none | full | dots_saveable
      patch_size=patch_size,     # image_size must be divisible by it
  ))

  cfg.mesh = ml_collections.ConfigDict(dict(
      data=-1, fsdp=1, tensor=1, rules=DEFAULT_RULES))

  cfg.data = ml_collections.ConfigDict(dict(
      kind="images",
      name=presets["data"],      # digits | mnist | cifar10
      image_size=image_size,     # images are resized to image_size x image_size
      channels=channels,
      num_classes=10,
      data_dir="",               # "" = $SCALING_DATA_DIR or ~/.cache/scaling/data
      seed=0,                    # example order; shared by every model size
  ))

  cfg.diffusion = ml_collections.ConfigDict(dict(
      schedule="cosine",         # cosine | linear
      timesteps=1000,            # T of the training process
      prediction="eps",          # eps | v: what the model outputs
      label_dropout=0.1,         # share of labels replaced by the null class (for guidance)
      ema_decay=0.999,           # EMA of the weights, used for evaluation and sampling
      eval_timesteps=(50, 200, 500, 800),  # held-out denoising error at these noise levels
      sampler="ddim",            # defaults of `scaling sample` / `scaling eval`
      sample_steps=50,
      eta=0.0,
      guidance=2.0,              # 0 unconditional, 1 conditional, > 1 guided
  ))

  cfg.train = ml_collections.ConfigDict(dict(
      steps=3_000,
      batch_size=128,
      optimizer="adamw",
      learning_rate=2e-3,
      schedule="cosine",         # cosine | constant | wsd
      warmup_steps=100,
      decay_fraction=0.2,
      final_lr_fraction=0.1,
      weight_decay=0.0,
      b1=0.9,
      b2=0.99,
      grad_clip=1.0,
      log_every=50,
  ))

  cfg.eval = ml_collections.ConfigDict(dict(
      every_steps=1_000,
      batch_size=256,
      max_examples=1_024,
  ))

  cfg.checkpoint = ml_collections.ConfigDict(dict(
      every_steps=1_000,
      max_to_keep=2,
      async_save=True,
  ))
  return cfg
