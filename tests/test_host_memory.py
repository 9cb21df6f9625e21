"""Freed host memory is kept for reuse, so repeated large buffers (a CPU train step's
temporaries) do not fault in fresh pages every time."""

import os
import subprocess
import sys

from scaling import host_memory

SIZE = 256 << 20  # a buffer far above glibc's largest mmap threshold (32 MB)
PAGES = SIZE // 4096


def faults_allocating(size: int) -> int:
  """Page faults of malloc, write every byte, free (as XLA's runtime treats its buffers;
  numpy asks for huge pages on large arrays, which would hide the faults)."""
  import ctypes
  import resource
  libc = ctypes.CDLL(None)
  libc.malloc.restype = ctypes.c_void_p
  libc.free.argtypes = [ctypes.c_void_p]
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  buffer = libc.malloc(size)
  ctypes.memset(buffer, 1, size)
  libc.free(buffer)
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


_CHILD = f"""
import sys
sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))!r})
from scaling import host_memory
from tests.test_host_memory import faults_allocating
print(host_memory.reuse_freed_memory(), faults_allocating({SIZE}), faults_allocating({SIZE}))
"""


def test_a_freed_buffer_is_reused_without_page_faults_and_the_opt_out_restores_malloc():
  # In a fresh process, as the `scaling` command starts (the suite's own process applied it
  # in conftest.py).
  for opt_out, applied in (("0", True), ("1", False)):
    env = {**os.environ, host_memory.ENV_OPT_OUT: opt_out}
    out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[0] == str(applied)
    first, second = int(out[1]), int(out[2])
    assert first > PAGES * 0.9  # the first buffer's pages are new either way
    if applied:
      assert second < PAGES * 0.01, (first, second)  # the heap kept them
    else:
      assert second > PAGES * 0.9, (first, second)  # mmap'd again and faulted in again
