"""GANs against diffusion on the 8x8 digits, at equal parameters and equal training compute.

One file, two sweeps: `configs/sweeps/gan_vs_dit_cpu.py:gan` and `...:dit`. Three sizes of
each family with matched parameter counts (~10k, ~50k, ~105k: `configs/gan/digits.py` g0-g2
against `configs/diffusion/digits.py` d0-d2), three seeds and two learning rates each (the
family's usual rate and three times it), every trial scored by `scaling eval` on the same
classifier: FD, KID, class accuracy, precision, recall and class coverage. A GAN step costs
more than a DiT step (both networks, forward and back, see
`scaling.models.counting.GAN_FORWARDS`), so each GAN trains for the steps that give it the
DiT's training FLOPs at its size. The table marks collapsed and diverged runs
(`scaling.analysis.collapse`); `tools/compare_sweeps.py` puts both sweeps side by side.
"""

import math

import ml_collections

from scaling import config
from scaling.families import family_for

SIZES = {"gan": ("g0", "g1", "g2"), "dit": ("d0", "d1", "d2")}
BASES = {"gan": "configs/gan/digits.py", "dit": "configs/diffusion/digits.py"}
LEARNING_RATES = {"gan": (1e-3, 3e-3), "dit": (2e-3, 6e-3)}
DIT_STEPS = 800  # the compute each size of both families gets: 800 DiT steps of 128 images
# The GAN trains on batches of 32 (it does more per image, so at equal compute it takes
# about as many steps as the DiT); DiT samples are scored conditionally (guidance 1, as
# the GAN draws), with DDIM at 20 steps.
OVERRIDES = {
    "gan": ("train.batch_size=32",),
    "dit": ("diffusion.sample_steps=20", "diffusion.guidance=1.0"),
}


def _flops_per_step(base: str, size: str, overrides=()) -> float:
  cfg = config.load(f"{base}:size={size}")
  config.apply_overrides(cfg, list(overrides))
  family = family_for(cfg)
  return family.flops_per_unit() * family.units_per_step()


def get_config(arg=None):
  family = arg or "gan"
  if family not in SIZES:
    raise ValueError(f"gan_vs_dit_cpu.py:{arg}: choose gan or dit")
  sweep = ml_collections.ConfigDict()
  sweep.name = f"gan_vs_dit_cpu_{family}"
  sweep.base = BASES[family]
  sweep.sizes = SIZES[family]
  sweep.seeds = (0, 1, 2)
  sweep.learning_rates = LEARNING_RATES[family]
  sweep.overrides = (*OVERRIDES[family], "eval.every_steps=0", "checkpoint.every_steps=0",
                     "train.log_every=50")
  # Equal training compute: the DiT's FLOPs at DIT_STEPS steps, in this family's steps.
  sweep.size_overrides = {}
  for size, dit_size in zip(SIZES[family], SIZES["dit"]):
    budget = DIT_STEPS * _flops_per_step(BASES["dit"], dit_size)
    steps = math.ceil(budget / _flops_per_step(BASES[family], size, OVERRIDES[family]))
    sweep.size_overrides[size] = (f"train.steps={steps}",)
  sweep.eval = ml_collections.ConfigDict({"suites": "images", "n": 30})  # 300 samples
  sweep.headline = ("image_quality", "generator" if family == "gan" else "ddim20/g1")
  sweep.max_parallel = 2
  return sweep
