"""Decoder-only LM on generated arithmetic (3-digit addition, reversed answers).

Usage: `scaling train --config=configs/lm/arithmetic.py:size=s5 --workdir=/tmp/run`.
The argument is a comma-separated list of `key=value` presets: `size` picks a row of
SIZES, `tasks` the training mixture (`add`: 3-digit addition; `mix`: addition, letter-string
and word analogies; `code`: programs from input/output examples beside addition, scored by
`scaling eval --suite code`). With no argument the default is `size=s5,tasks=add` (~117k
parameters), which learns held-out 3-digit addition to 100% exact match in about a
minute on a laptop CPU. Every other field is `scaling.families.lm.base_config()`'s.
"""

from scaling import config
from scaling.families import lm

# name: (d_model, n_layers, n_heads, d_ff). Parameter counts with the 288-token vocab
# of `tasks=add` and tied embeddings (see `scaling.models.counting`). On the task mixture,
# 3-digit addition appears between s1 and s3; s5 learns it alone in about a minute.
SIZES = {
    "s0": (12, 1, 2, 48),      # ~5k
    "s1": (16, 1, 2, 64),      # ~8k
    "s2": (24, 2, 2, 96),      # ~21k
    "s2.5": (28, 2, 2, 112),   # ~27k   (half steps through the transition, for the deeper
    "s3": (32, 2, 4, 128),     # ~34k    study in experiments/arithmetic_prediction)
    "s3.5": (40, 2, 4, 160),   # ~50k
    "s4": (48, 2, 4, 192),     # ~69k
    "s4.5": (56, 2, 4, 224),   # ~92k
    "s5": (64, 2, 4, 256),     # ~117k
    "s6": (96, 3, 4, 384),     # ~360k
    "s7": (128, 4, 4, 512),    # ~830k
    "s8": (192, 5, 6, 768),    # ~2.3M
}

# `tasks=` presets: what the model is trained on.
MIXTURES = {
    "add": (("arithmetic", 1.0),),
    "mix": (("arithmetic", 0.5), ("letter_string", 0.3), ("word_analogy", 0.2)),
    "code": (("program", 0.7), ("arithmetic", 0.3)),
}

# Per mixture: (name prefix, seq_len, vocab_size). A program's prompt and answer take up to
# data.program_max_chars = 64 characters, each at most one token.
DATA = {
    "add": ("arithmetic", 16, 288),
    "mix": ("tasks", 32, 384),
    "code": ("code", 65, 384),
}


def get_config(arg=None):
  presets = config.parse_presets(arg, {"size": tuple(SIZES), "tasks": tuple(MIXTURES)},
                                 {"size": "s5", "tasks": "add"})
  d_model, n_layers, n_heads, d_ff = SIZES[presets["size"]]
  prefix, seq_len, vocab_size = DATA[presets["tasks"]]
  cfg = lm.base_config()
  cfg.name = f"{prefix}-{presets['size']}"
  cfg.model.update(d_model=d_model, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_heads,
                   d_ff=d_ff)
  cfg.data.update(mixture=MIXTURES[presets["tasks"]], seq_len=seq_len, vocab_size=vocab_size)
  if presets["tasks"] == "code":
    # Only 56 functions have depth 1; a larger held-out share leaves a few of them to test.
    cfg.data.eval_fraction = 0.05
  return cfg
