"""Class-conditional DiT on scikit-learn's 8x8 handwritten digits (1,797 images).

Usage: `scaling train --config=configs/diffusion/digits.py:size=d3 --workdir=/tmp/dit`.
The argument is a comma-separated list of `key=value` presets: `size` picks a row of
SIZES, `data` the dataset (`digits`, built in; `mnist`, `cifar10` read from TFDS data the
user prepared). Sampling: `scaling sample --workdir=/tmp/dit --class 3 -n 64`. Every other
field is `scaling.families.diffusion.base_config()`'s.
"""

from scaling import config
from scaling.data import image_sets
from scaling.families import diffusion

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

# Patch size per dataset (its native size and channels: `image_sets.NATIVE`).
PATCH_SIZES = {"digits": 2, "mnist": 4, "cifar10": 4}


def get_config(arg=None):
  presets = config.parse_presets(arg, {"size": tuple(SIZES), "data": tuple(PATCH_SIZES)},
                                 {"size": "d3", "data": "digits"})
  d_model, n_layers, n_heads, d_ff = SIZES[presets["size"]]
  image_size, channels = image_sets.NATIVE[presets["data"]]
  patch_size = PATCH_SIZES[presets["data"]]
  cfg = diffusion.base_config()
  cfg.name = f"{presets['data']}-dit-{presets['size']}"
  cfg.model.update(d_model=d_model, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_heads,
                   d_ff=d_ff, patch_size=patch_size)
  cfg.data.update(name=presets["data"], image_size=image_size, channels=channels)
  return cfg
