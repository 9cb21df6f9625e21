"""Joining a multi-process JAX run (several hosts, or several processes on one host).

Every process runs the same `scaling train` command; each learns its id from flags or from
the cluster (JAX detects SLURM and Cloud TPU environments by itself), then reads only its
own shard of the data. On CPU, collectives between processes go through gloo.
"""

from __future__ import annotations

import socket
import sys
import time

import jax

from scaling.errors import UserError


def _wait_for_coordinator(coordinator: str, timeout_s: float) -> None:
  """Waits until process 0's coordinator accepts connections, or fails with one line.

  JAX's own client aborts the whole process when it cannot connect; checking first turns
  an unreachable coordinator into a clear error.
  """
  host, _, port = coordinator.rpartition(":")
  if not host or not port.isdigit():
    raise UserError(f"--coordinator must be HOST:PORT, got {coordinator!r}")
  deadline = time.monotonic() + timeout_s
  while True:
    try:
      with socket.create_connection((host, int(port)), timeout=2):
        return
    except OSError as e:
      if time.monotonic() > deadline:
        raise UserError(f"coordinator {coordinator} unreachable after {timeout_s:g} s "
                        f"({e.strerror or e}); is process 0 running?") from None
      time.sleep(0.5)


def initialize(coordinator: str | None, num_processes: int | None, process_id: int | None,
               timeout_s: int = 300) -> None:
  """Joins the run; with no arguments, relies on JAX's cluster auto-detection."""
  explicit = (coordinator, num_processes, process_id)
  if any(v is not None for v in explicit) and any(v is None for v in explicit):
    raise UserError("--coordinator, --num_processes and --process_id go together")
  if num_processes is not None and not 0 <= process_id < num_processes:
    raise UserError(f"--process_id must be in [0, {num_processes}), got {process_id}")
  if coordinator and process_id:
    _wait_for_coordinator(coordinator, timeout_s)
  # Must be set before the CPU backend starts; harmless on accelerators.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  try:
    jax.distributed.initialize(coordinator, num_processes, process_id,
                               initialization_timeout=timeout_s)
  except (RuntimeError, ValueError) as e:  # JAX reports an unreachable coordinator so.
    message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UserError(f"could not join the distributed run at {coordinator or 'auto'}: "
                    f"{message}") from None
  # One line per process: the way to see that every host joined with the devices expected.
  print(f"joined: process {jax.process_index()} of {jax.process_count()}, "
        f"{jax.local_device_count()} local of {jax.device_count()} devices "
        f"({jax.devices()[0].device_kind})", file=sys.stderr, flush=True)
