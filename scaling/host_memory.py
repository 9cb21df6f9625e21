"""Keep the host's freed memory for reuse, so a CPU train step does not fault in fresh pages.

XLA's CPU runtime allocates each execution's temporaries as one buffer (273 MB for a
3M-parameter model at batch 16 x 128) and frees it when the step ends. glibc serves a
request that large with `mmap` and returns it with `munmap`, so every step faults in and
zeroes the whole buffer again: 69k page faults and 14% of the step, measured. With one
malloc arena, no `mmap` for large blocks and a high trim threshold, the buffer stays in the
heap and the next step reuses it.

Must run before JAX starts its CPU threads (each thread binds to an arena at its first
allocation); `scaling`'s command does it first thing. Only on glibc; elsewhere, or with
`SCALING_SYSTEM_MALLOC=1`, nothing changes.
"""

from __future__ import annotations

import ctypes
import os

ENV_OPT_OUT = "SCALING_SYSTEM_MALLOC"

# mallopt(3) parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
# Free memory at the top of the heap that is kept rather than returned to the system.
_KEEP_BYTES = 1 << 30


def reuse_freed_memory() -> bool:
  """Configures glibc's malloc as above; True if it was applied."""
  if os.environ.get(ENV_OPT_OUT) == "1":
    return False
  try:
    mallopt = ctypes.CDLL(None).mallopt
  except (OSError, AttributeError):  # not glibc (macOS, musl without mallopt, Windows)
    return False
  # All threads in one arena: a thread arena cannot grow past 64 MB without mmap.
  return bool(mallopt(_M_ARENA_MAX, 1) and mallopt(_M_MMAP_MAX, 0)
              and mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES))
