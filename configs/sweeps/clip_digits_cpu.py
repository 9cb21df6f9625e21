"""A contrastive image-text ladder on the 8x8 digits and generated captions, on a laptop CPU.

`scaling sweep run --config=configs/sweeps/clip_digits_cpu.py` trains five sizes of both
towers (`configs/clip/digits.py` c0-c4) with two seeds each on the same images in the same
order, scores each on the held-out images and captions (zero-shot accuracy per caption
template, held-out arithmetic captions, retrieval recall@1 and @5), and runs the emergence
test on each.
"""

import ml_collections


def get_config(arg=None):
  del arg
  sweep = ml_collections.ConfigDict()
  sweep.name = "clip_digits_cpu"
  sweep.base = "configs/clip/digits.py"
  sweep.sizes = ("c0", "c1", "c2", "c3", "c4")
  sweep.seeds = (0, 1)
  # 800 steps x 128 images: about 67 passes over the 1,527 training digits.
  sweep.overrides = ("train.steps=800", "eval.every_steps=0", "checkpoint.every_steps=400")
  sweep.eval = ml_collections.ConfigDict({"suites": "zero_shot"})
  sweep.headline = ("zero_shot", "all")
  return sweep
