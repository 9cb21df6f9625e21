"""Audio language-model ladder on spoken counting, over a trained codec's tokens.

Usage: `scaling train --config=configs/audio/counting.py:size=a1
--config.data.codec=runs/audio_codec --workdir=/tmp/audio` (train the codec first with
`configs/audio/codec.py`). `size` picks a row of SIZES; every other field is
`scaling.families.audio.base_config()`'s.
"""

from scaling import config
from scaling.families import audio

# name: (d_model, n_layers, n_heads, d_ff)
SIZES = {
    "a0": (32, 1, 2, 128),
    "a1": (48, 2, 4, 192),
    "a2": (64, 3, 4, 256),
    "a3": (96, 3, 4, 384),
    "a4": (128, 4, 4, 512),
}


def get_config(arg=None):
  presets = config.parse_presets(arg, {"size": tuple(SIZES)}, {"size": "a1"})
  d_model, n_layers, n_heads, d_ff = SIZES[presets["size"]]
  cfg = audio.base_config()
  cfg.name = f"audio-{presets['size']}"
  cfg.model.update(d_model=d_model, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_heads,
                   d_ff=d_ff)
  return cfg
