"""The audio codec of spoken counting (strided convolutions and residual VQ).

Usage: `scaling train --config=configs/audio/codec.py --workdir=/tmp/codec`; `codebooks=N`
sets the number of RVQ levels (default 4). Every other field is
`scaling.families.codec.base_config()`'s.
"""

from scaling import config
from scaling.families import codec


def get_config(arg=None):
  presets = config.parse_presets(arg, {"codebooks": ("1", "2", "4", "8")}, {"codebooks": "4"})
  cfg = codec.base_config()
  cfg.model.n_codebooks = int(presets["codebooks"])
  return cfg
