"""Peak FLOP/s of the devices a run uses, for model FLOPs utilisation (MFU).

Accelerators use their published dense peaks. A CPU has no meaningful datasheet number,
so its peak is measured: the best throughput of a large jitted matmul on this host,
cached per CPU model and JAX version.
"""

from __future__ import annotations

import functools
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from scaling import files
from scaling.errors import UserError

# Dense bf16 peak per chip, FLOP/s (vendor datasheets, without sparsity).
PEAK_BF16 = {
    "H100": 989e12,
    "H200": 989e12,
    "A100": 312e12,
    "L4": 121e12,
    "TPU v4": 275e12,
    "TPU v5 lite": 197e12,  # v5e
    "TPU v5e": 197e12,
    "TPU v5p": 459e12,
    "TPU v5": 459e12,
    "TPU v6 lite": 918e12,  # v6e (Trillium)
    "TPU v6e": 918e12,
}


# CPU features that change which kernels XLA emits (and so float rounding).
_VECTOR_ISA = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
               "avx512_bf16", "avx512_fp16", "avx512_vnni", "amx_bf16", "amx_tile",
               "asimd", "sve", "sve2", "bf16", "i8mm")


def device_kind() -> str:
  return jax.devices()[0].device_kind


def _cpu_flags() -> list[str]:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith(("flags", "Features")):
          present = set(line.split(":", 1)[1].split())
          return [flag for flag in _VECTOR_ISA if flag in present]
  except OSError:
    pass
  return []


def fingerprint(device_count: int | None = None) -> dict:
  """What decides a run's float rounding besides its config: the processor and its vector
  instructions, the devices the run uses (`device_count`, default all), the threads, the
  JAX build and XLA's flags. Runs with equal fingerprints (and configs) give equal
  numbers."""
  import jaxlib
  try:
    threads = len(os.sched_getaffinity(0))
  except (AttributeError, OSError):
    threads = os.cpu_count()
  return {
      "cpu": _cpu_model(), "vector_isa": _cpu_flags(), "threads": threads,
      "backend": jax.default_backend(), "device_kind": device_kind(),
      "device_count": device_count or jax.device_count(), "process_count": jax.process_count(),
      "jax": jax.__version__, "jaxlib": jaxlib.__version__,
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
  }


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=None)
def _square(n: int, dtype) -> tuple:
  """An n x n operand on the first device and its compiled square: compiled once per
  process, however many probes time it."""
  device = jax.devices()[0]
  # A mesh of its own: a caller's run mesh (all devices) must not apply to this matmul.
  with jax.set_mesh(jax.sharding.Mesh(np.array([device]), ("host",))):
    a = jax.device_put(jnp.ones((n, n), dtype), device)
    matmul = jax.jit(lambda x: x @ x).lower(a).compile()
  matmul(a).block_until_ready()
  return a, matmul


class MatmulProbe:
  """An n x n matmul on the first device, timed on demand: the host's f32 peak.

  A benchmark can measure the peak between its own timed rounds (A B A B) and report MFU
  against the peak of the same minutes rather than a cached one.
  """

  def __init__(self, n: int = 2048, dtype=jnp.float32):
    self.n = n
    self._a, self._matmul = _square(n, jnp.dtype(dtype))

  def flops(self, repeats: int = 5) -> float:
    """Best FLOP/s of `repeats` runs."""
    best = float("inf")
    for _ in range(repeats):
      t0 = time.perf_counter()
      self._matmul(self._a).block_until_ready()
      best = min(best, time.perf_counter() - t0)
    return 2 * self.n ** 3 / best


def measure_matmul_flops(n: int = 2048, repeats: int = 5, dtype=jnp.float32) -> float:
  """Best observed FLOP/s of an n x n matmul on the first device."""
  return MatmulProbe(n, dtype).flops(repeats)


def _peak_cache() -> tuple[str, str]:
  """The cache file of measured peaks and this host's key in it."""
  root = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
  return (os.path.join(root, "scaling", "cpu_peak.json"),
          f"{_cpu_model()}|{os.cpu_count()}|jax {jax.__version__}")


def _peak_table(path: str) -> dict:
  try:
    table = files.read_json(path, default={})
  except UserError:
    return {}  # a corrupt cache is measured again
  return table if isinstance(table, dict) else {}


def record_cpu_peak(flops: float) -> float:
  """Keeps the best peak this host has shown and returns it. A peak is a maximum: a
  measurement taken while other work shared the cores (a test suite, a second run) is
  lower and never replaces a better one, and any better one replaces it."""
  path, key = _peak_cache()
  table = _peak_table(path)
  best = max(float(table.get(key, 0.0)), float(flops))
  if best != table.get(key):
    table[key] = best
    try:
      os.makedirs(os.path.dirname(path), exist_ok=True)
      # Atomic: several processes (test workers, parallel trials) may measure at once.
      files.write_json(path, table)
    except OSError:
      pass  # a read-only home only costs a re-measurement next time
  return best


def cpu_peak_flops() -> float:
  """The best matmul peak measured on this whole host (all cores), cached on disk
  (`$XDG_CACHE_HOME/scaling`, else `~/.cache/scaling`); `scaling bench train` raises it
  whenever it measures a better one."""
  path, key = _peak_cache()
  known = _peak_table(path).get(key)
  if isinstance(known, (int, float)) and known > 0:
    return float(known)
  return record_cpu_peak(measure_matmul_flops(repeats=10))


def peak_flops() -> tuple[float, str]:
  """Peak FLOP/s of all devices of this run together, and where the number came from."""
  kind = device_kind()
  if jax.default_backend() == "cpu":
    # Simulated CPU devices share the host's cores: the host is the unit.
    return cpu_peak_flops(), "measured f32 matmul peak of this host"
  for name, peak in sorted(PEAK_BF16.items(), key=lambda kv: -len(kv[0])):
    if name.lower() in kind.lower():
      return peak * jax.device_count(), f"datasheet bf16 peak of {name}"
  return float("nan"), f"unknown peak for device kind {kind!r}"
