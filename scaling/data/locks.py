"""Where prepared data lives, and the lock that lets one process write it while others wait."""

from __future__ import annotations

import contextlib
import fcntl
import os


def default_data_dir() -> str:
  return os.environ.get("SCALING_DATA_DIR") or os.path.expanduser("~/.cache/scaling/data")


_HELD: set[str] = set()  # data directories whose lock this process holds


@contextlib.contextmanager
def preparing(data_dir: str):
  """Holds the data directory's lock while a dataset is written.

  Runs that start together (a sweep's SLURM array tasks) would write the same dataset at
  once; the first prepares it while the others wait, then find it written.
  """
  key = os.path.realpath(data_dir)
  if key in _HELD:  # re-entered (a text corpus this toolkit builds, inside a mixture's
    yield           # preparation): a second flock on the same file would wait forever
    return
  os.makedirs(data_dir, exist_ok=True)
  with open(os.path.join(data_dir, ".prepare.lock"), "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    _HELD.add(key)
    try:
      yield
    finally:
      _HELD.discard(key)
