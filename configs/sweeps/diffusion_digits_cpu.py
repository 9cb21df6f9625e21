"""A DiT size ladder on the 8x8 digits, on a laptop CPU: sample quality vs model size.

`scaling sweep run --config=configs/sweeps/diffusion_digits_cpu.py` trains every size,
samples and scores each one at several sampler settings (DDIM and DDPM at 5-50 steps,
guidance 0-4), fits the loss and FD against size, and draws the figures: FD, KID and class
accuracy vs parameters, quality vs sampling steps, and quality vs guidance. Every model
sees the same images in the same order (the data seed is fixed).
"""

import ml_collections


def get_config(arg=None):
  del arg
  sweep = ml_collections.ConfigDict()
  sweep.name = "diffusion_digits_cpu"
  sweep.base = "configs/diffusion/digits.py"
  sweep.sizes = ("d0", "d1", "d2", "d3", "d4")  # ~10k to ~720k parameters
  sweep.seeds = (0,)
  # 2000 steps x 128 images: about 170 passes over the 1,527 training digits.
  sweep.overrides = ("train.steps=2000", "eval.every_steps=0", "checkpoint.every_steps=500")
  sweep.size_overrides = {}
  sweep.tokens_per_param = 0
  sweep.eval = ml_collections.ConfigDict({
      "suites": "images", "n": 50,              # 50 images per class: 500 per setting
      "sampler": "ddim,ddpm", "steps": "5,10,20,50", "guidance": "0,1,2,3,4",
  })
  sweep.headline = ("image_quality", "ddim50/g2")
  return sweep
