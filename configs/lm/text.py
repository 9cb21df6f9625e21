"""Decoder-only LMs on natural text with arithmetic mixed in: a size ladder and mesh presets.

Usage: `scaling train --config=configs/lm/text.py:size=30m,corpus=c4,mesh=gpu8 --workdir=...`
The argument is a comma-separated list of presets:

- `size`: a row of SIZES (`tiny`, `1m` ... `1b`).
- `corpus`: a row of CORPORA (`tiny_shakespeare`, `lm1b`, `c4`); 95% of the tokens come
  from it and 5% are generated 3-digit additions (`data.mixture` can say otherwise).
- `mesh`: `cpu`, or an accelerator slice: `gpuN` (N GPUs, e.g. `gpu8` = one 8-GPU host),
  `v4-N` and `v5p-N` (N TensorCores, N/2 chips), `v5e-N` and `v6e-N` (N chips).

With no argument: `size=tiny,corpus=tiny_shakespeare,mesh=cpu`, about a minute on a
laptop CPU once the corpus is prepared (`python -m scaling.data.corpora tiny_shakespeare`).

The ladder follows Pythia: GELU MLPs of 4x width, head dim 64 (128 at 1b, as cuDNN's flash
attention prefers), width/depth ("aspect ratio") between 25 and 100, and learning rates
from the Pythia and GPT-3 tables above 100M, rising for smaller models. Parameters are
non-embedding (12 d_model^2 per layer); the embedding adds vocab x d_model.

| size | d_model | layers | heads | head dim | d/L | params | lr     | batch (seqs) |
|------|---------|--------|-------|----------|-----|--------|--------|--------------|
| tiny |      64 |      2 |     4 |       16 |  32 |  98k   | 3e-3   |   32         |
| 1m   |     128 |      5 |     2 |       64 |  26 |  0.98M | 3e-3   |   64         |
| 3m   |     256 |      4 |     4 |       64 |  64 |  3.15M | 2e-3   |   64         |
| 10m  |     384 |      6 |     6 |       64 |  64 |  10.6M | 1.5e-3 |  128         |
| 30m  |     512 |     10 |     8 |       64 |  51 |  31.5M | 1e-3   |  128         |
| 100m |     768 |     14 |    12 |       64 |  55 |  99M   | 6e-4   |  256         |
| 300m |    1024 |     24 |    16 |       64 |  43 |  302M  | 3e-4   |  256         |
| 1b   |    2048 |     20 |    16 |      128 | 102 |  1.01B | 2.5e-4 |  512         |

Steps give 20 tokens per (non-embedding) parameter, Chinchilla's compute-optimal ratio
(tiny: a fixed 400). Every size of a corpus reads the same packed rows in the same order
(only the grouping into batches differs), so smaller models see a prefix of what larger
ones see, as in Pythia.

Mesh rules: the batch is split over every device (`data` x `fsdp`); `fsdp` shards
parameters and optimizer state over min(devices, 8) devices from 300m and min(devices, 16)
at 1b, and is 1 below (the all-gathers would cost more than the memory they save); no
tensor parallelism up to 1b. The global batch is raised to a multiple of the device
count. On accelerators: bfloat16 compute with float32 parameters and optimizer state
(`model.dtype`), cuDNN flash attention on GPUs, `scan_layers` from 12 layers (compile
time), and `remat=dots_saveable` from 300m (activations of long sequences); on CPU:
float32, XLA attention, no scan, no remat.
"""

import math
import re

from scaling import config
from scaling.errors import ConfigError
from scaling.families import lm

# name: (d_model, n_layers, n_heads, learning rate, batch size in sequences)
SIZES = {
    "tiny": (64, 2, 4, 3e-3, 32),
    "1m": (128, 5, 2, 3e-3, 64),
    "3m": (256, 4, 4, 2e-3, 64),
    "10m": (384, 6, 6, 1.5e-3, 128),
    "30m": (512, 10, 8, 1e-3, 128),
    "100m": (768, 14, 12, 6e-4, 256),
    "300m": (1024, 24, 16, 3e-4, 256),
    "1b": (2048, 20, 16, 2.5e-4, 512),
}

# name: (mixture source, seq_len, vocab size, packed training rows, held-out rows).
# Rows are packed once per corpus (20 bytes per token on disk); longer runs cycle through
# them again, reshuffled.
CORPORA = {
    "tiny_shakespeare": ("text:tiny_shakespeare", 128, 1024, 8192, 64),
    "lm1b": ("text:lm1b", 512, 32768, 2 ** 19, 512),
    "c4": ("text:c4/en", 1024, 32768, 2 ** 20, 512),
}

FSDP = {"300m": 8, "1b": 16}  # FSDP group size per size; 1 when absent.
MESHES = ("cpu", "gpuN", "v4-N", "v5p-N", "v5e-N", "v6e-N")


def mesh_devices(mesh: str) -> tuple[str, int]:
  """(platform, devices) of a mesh preset: `cpu`, `gpuN`, `v4-N`, `v5p-N`, `v5e-N`, `v6e-N`."""
  if mesh == "cpu":
    return "cpu", 0  # 0: whatever devices there are
  match = re.fullmatch(r"(gpu|v4-|v5p-|v5e-|v6e-)(\d+)", mesh)
  if not match or int(match[2]) < 1:
    raise ConfigError(f"unknown mesh {mesh!r}; expected {', '.join(MESHES)}")
  kind, n = match[1], int(match[2])
  if kind in ("v4-", "v5p-"):  # Named by TensorCores; JAX sees one device per chip.
    if n % 2:
      raise ConfigError(f"{mesh}: TensorCore counts of {kind[:-1]} slices are even")
    n //= 2
  return ("gpu" if kind == "gpu" else "tpu"), n


def get_config(arg=None):
  # The mesh preset is a pattern (gpu8, v5e-16), checked by mesh_devices.
  presets = config.parse_presets(
      arg, {"size": tuple(SIZES), "corpus": tuple(CORPORA), "mesh": None},
      {"size": "tiny", "corpus": "tiny_shakespeare", "mesh": "cpu"})
  size, corpus = presets["size"], presets["corpus"]
  d_model, n_layers, n_heads, lr, batch = SIZES[size]
  source, seq_len, vocab, num_train, num_eval = CORPORA[corpus]
  platform, devices = mesh_devices(presets["mesh"])
  accelerator = platform != "cpu"
  if devices:
    batch = math.ceil(batch / devices) * devices
  params = 12 * n_layers * d_model ** 2
  steps = 400 if size == "tiny" else math.ceil(20 * params / (batch * seq_len))

  cfg = lm.base_config()
  cfg.name = f"text-{corpus}-{size}"
  cfg.model.update(
      d_model=d_model, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_heads,
      d_ff=4 * d_model,
      dtype="bfloat16" if accelerator else "float32",  # compute; parameters stay float32
      attention="cudnn" if platform == "gpu" else "xla",
      scan_layers=accelerator and n_layers >= 12,
      remat="dots_saveable" if accelerator and size in ("300m", "1b") else "none")
  cfg.mesh.fsdp = min(devices, FSDP.get(size, 1)) if devices else 1
  cfg.data.update(
      # (source, weight): `text:<tfds name>` or a task generator; weights are token shares.
      mixture=((source, 0.95), ("arithmetic", 0.05)),
      num_train=num_train, num_eval=num_eval, seq_len=seq_len, vocab_size=vocab)
  cfg.train.update(steps=steps, batch_size=batch, learning_rate=lr, b2=0.95,
                   warmup_steps=max(10, steps // 50), log_every=50 if size == "tiny" else 100)
  cfg.eval.update(every_steps=200 if size == "tiny" else 1000,
                  batch_size=math.ceil(64 / devices) * devices if devices else 64,
                  max_examples=num_eval)
  return cfg
