"""JAX's persistent compilation cache: a run that compiles what an earlier run compiled
(a sweep's trials of one size differ only in their seed) reads it from disk instead.

Turned on for any `scaling` command by `$SCALING_CACHE_DIR`; sweeps set it for their
trials to `<sweep dir>/cache/compile`.
"""

from __future__ import annotations

import os

ENV = "SCALING_CACHE_DIR"


def enable(directory: str) -> None:
  """Caches every compiled program under `directory` (created if missing)."""
  import jax
  os.makedirs(directory, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", directory)
  # Tiny models compile in well under the default one-second threshold; cache them all.
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def enable_from_env() -> None:
  directory = os.environ.get(ENV)
  if directory:
    enable(directory)
