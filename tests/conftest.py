"""Test setup: 8 simulated CPU devices and a per-session data cache.

Both must be set before JAX (or anything importing it) is imported.
"""

import os
import tempfile

# The suite's models are tiny, so XLA's LLVM optimisation passes cost far more than they
# save: at backend optimisation level 0 the same programs compile in about half the time
# (the numerics stay XLA's; every comparison in the suite is between runs built alike).
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8"
                           + " --xla_backend_optimization_level=0").strip()
os.environ["JAX_PLATFORMS"] = "cpu"
# Generated datasets are shared by the tests of one session, and by their subprocesses.
os.environ.setdefault("SCALING_DATA_DIR", tempfile.mkdtemp(prefix="scaling-data-"))
# One persistent compilation cache for the session and its subprocesses: the many tiny
# models of the suite compile once, and every later test that builds the same program
# reads it from disk.
os.environ.setdefault("SCALING_CACHE_DIR", tempfile.mkdtemp(prefix="scaling-compile-"))

# Artifacts that tests in several files compare against (a reference sweep) are built once
# per session here, by whichever worker needs them first (tests/helpers.py: built_once).
os.environ.setdefault("SCALING_TEST_SHARED", tempfile.mkdtemp(prefix="scaling-shared-"))

from scaling import compile_cache  # noqa: E402  (after the flags above)

compile_cache.enable(os.environ["SCALING_CACHE_DIR"])
