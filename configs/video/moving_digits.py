"""Video DiT ladder on moving digits (8 frames of 24x24, one digit bouncing).

Usage: `scaling train --config=configs/video/moving_digits.py:size=v1 --workdir=/tmp/video`.
`size` picks a row of SIZES; `attention=joint` attends over all space-time tokens instead
of within, then across, frames. Every other field is `scaling.families.video.base_config()`'s.
"""

from scaling import config
from scaling.families import video

# name: (d_model, n_layers, n_heads, d_ff)
SIZES = {
    "vt": (16, 1, 2, 64),       # tiny: the bottom of the CPU sweep's ladder
    "v0": (32, 2, 4, 128),
    "v1": (64, 3, 4, 256),
    "v2": (96, 4, 4, 384),
    "v3": (128, 6, 8, 512),
}


def get_config(arg=None):
  presets = config.parse_presets(arg, {"size": tuple(SIZES), "attention": ("factorised",
                                                                          "joint")},
                                 {"size": "v1", "attention": "factorised"})
  d_model, n_layers, n_heads, d_ff = SIZES[presets["size"]]
  cfg = video.base_config()
  cfg.name = f"video-{presets['size']}"
  cfg.model.update(d_model=d_model, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_heads,
                   d_ff=d_ff, video_attention=presets["attention"])
  return cfg
