"""Contrastive image-text ladder on 8x8 digits and generated captions.

Usage: `scaling train --config=configs/clip/digits.py:size=c2 --workdir=/tmp/clip`. `size`
picks a row of SIZES (both towers have that shape). Every other field is
`scaling.families.clip.base_config()`'s.
"""

from scaling import config
from scaling.families import clip

# name: (d_model, n_layers, n_heads, d_ff) of each tower.
SIZES = {
    "c0": (8, 1, 2, 32),
    "c1": (16, 1, 2, 64),
    "c2": (32, 2, 4, 128),
    "c3": (64, 2, 4, 256),
    "c4": (96, 3, 4, 384),
}


def get_config(arg=None):
  presets = config.parse_presets(arg, {"size": tuple(SIZES)}, {"size": "c2"})
  d_model, n_layers, n_heads, d_ff = SIZES[presets["size"]]
  cfg = clip.base_config()
  cfg.name = f"clip-{presets['size']}"
  cfg.model.update(d_model=d_model, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_heads,
                   d_ff=d_ff)
  return cfg
