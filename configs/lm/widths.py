"""A width ladder at fixed depth for learning-rate transfer (muP) on 3-digit addition.

Usage: `scaling train --config=configs/lm/widths.py:size=w128,parametrization=mup`. Every
preset has 2 layers, 4 heads and d_ff = 4 x d_model, untied embeddings (muP's readout is
its own matrix), so only the width changes along the ladder; `base_width` is the narrowest
width, where muP and SP share learning rates and readout (they differ in the 1/head_dim
attention scale and muP's zero-initialised head). Every other field is `scaling.families.lm.base_config()`'s.
"""

from scaling import config
from scaling.families import lm

WIDTHS = {"w32": 32, "w64": 64, "w128": 128, "w256": 256, "w512": 512}
BASE_WIDTH = 32


def get_config(arg=None):
  presets = config.parse_presets(
      arg, {"size": tuple(WIDTHS), "parametrization": ("sp", "mup")},
      {"size": "w64", "parametrization": "sp"})
  width = WIDTHS[presets["size"]]
  cfg = lm.base_config()
  cfg.name = f"widths-{presets['parametrization']}-{presets['size']}"
  cfg.model.update(d_model=width, n_layers=2, n_heads=4, n_kv_heads=4, d_ff=4 * width,
                   tie_embeddings=False, parametrization=presets["parametrization"],
                   base_width=BASE_WIDTH)
  cfg.data.update(mixture=(("arithmetic", 1.0),), seq_len=16, vocab_size=288)
  return cfg
