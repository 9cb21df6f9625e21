"""Learning-rate transfer across width: a grid of 6 learning rates x 3 widths x 2 seeds.

`scaling sweep run --config=configs/sweeps/mup_transfer_cpu.py:mup` (or `:sp`) trains the
fixed-depth width ladder of configs/lm/widths.py (32, 64 and 256 wide: 8x) on 3-digit
addition at every learning rate of the grid (factor 2 apart), in the given
parametrization. `scaling plot` picks the best rate per width by held-out loss and draws
loss against learning rate, one line per width: under muP the optimum should stay put;
under SP it moves. See experiments/mup_transfer.
"""

import ml_collections

from scaling.errors import ConfigError

LEARNING_RATES = (7.5e-4, 1.5e-3, 3e-3, 6e-3, 1.2e-2, 2.4e-2)


def get_config(arg=None):
  parametrization = arg or "mup"
  if parametrization not in ("sp", "mup"):
    raise ConfigError(f"mup_transfer_cpu: the argument is sp or mup, not {arg!r}")
  sweep = ml_collections.ConfigDict()
  sweep.name = f"mup_transfer_cpu_{parametrization}"
  sweep.base = f"configs/lm/widths.py:parametrization={parametrization}"
  sweep.sizes = ("w32", "w64", "w256")
  sweep.seeds = (0, 1)
  sweep.learning_rates = LEARNING_RATES
  # Short runs: 300 steps x 64 sums (19.2k examples, a third of the 60k), scored by the
  # held-out loss at the end.
  sweep.overrides = ("data.num_train=60000", "train.steps=300", "train.batch_size=64",
                     "train.warmup_steps=30", "eval.every_steps=0", "checkpoint.every_steps=300")
  sweep.headline = ("arithmetic", "+3d")
  return sweep
