"""Class-conditional GAN on scikit-learn's 8x8 handwritten digits (1,797 images).

Usage: `scaling train --config=configs/gan/digits.py:size=g1 --workdir=/tmp/gan`, then
`scaling sample --workdir=/tmp/gan --class 3 -n 64` or `scaling eval --workdir=/tmp/gan`.
`size` picks a row of SIZES, `data` the dataset (`digits`, built in; `mnist`, `cifar10` read
from TFDS data the user prepared). Every other field is `scaling.families.gan.base_config()`'s.
"""

from scaling import config
from scaling.data import image_sets
from scaling.families import gan

# name: (d_model, n_layers, n_heads, d_ff) of each network. The generator and the
# discriminator together have about as many parameters as the DiT preset of the same
# digit (`configs/diffusion/digits.py`: d0 ~10k, d1 ~49k, d2 ~104k, d3 ~253k), so the two
# families compare at equal parameter counts (see `scaling.models.counting.gan_params`).
SIZES = {
    "g0": (16, 1, 2, 48),       # ~10k
    "g1": (24, 2, 2, 120),      # ~50k
    "g2": (36, 2, 2, 160),      # ~105k
    "g3": (48, 3, 4, 176),      # ~252k
}

# Patch size per dataset (its native size and channels: `image_sets.NATIVE`).
PATCH_SIZES = {"digits": 2, "mnist": 4, "cifar10": 4}


def get_config(arg=None):
  presets = config.parse_presets(arg, {"size": tuple(SIZES), "data": tuple(PATCH_SIZES)},
                                 {"size": "g1", "data": "digits"})
  d_model, n_layers, n_heads, d_ff = SIZES[presets["size"]]
  image_size, channels = image_sets.NATIVE[presets["data"]]
  patch_size = PATCH_SIZES[presets["data"]]
  cfg = gan.base_config()
  cfg.name = f"{presets['data']}-gan-{presets['size']}"
  cfg.model.update(d_model=d_model, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_heads,
                   d_ff=d_ff, patch_size=patch_size)
  cfg.data.update(name=presets["data"], image_size=image_size, channels=channels)
  return cfg
