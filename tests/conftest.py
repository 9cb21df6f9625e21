"""Test setup: 8 simulated CPU devices and a per-session data cache.

Both must be set before JAX (or anything importing it) is imported.
"""

import os
import tempfile


def _known_to_xla(flag: str) -> bool:
  """Whether this jaxlib's XLA defines `--name=value`'s name (XLA aborts on a flag it does
  not know, and jax is not pinned)."""
  import mmap
  import jaxlib  # the package only: XLA itself is not loaded until jax is imported
  path = os.path.join(os.path.dirname(jaxlib.__file__), "libjax_common.so")
  if not os.path.exists(path):
    return False
  name = flag.lstrip("-").split("=")[0]
  with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as lib:
    return lib.find(name.encode()) >= 0


# The suite's models are tiny, so compiling them costs far more than running them. At
# backend optimisation level 0 (no LLVM passes) the same programs compile in about half
# the time, and XLA's older loop emitters compile CPU fusions in about half the time again
# (the numerics stay XLA's; every comparison in the suite is between runs built alike, and
# the stored first losses agree to 1e-5 either way).
_FAST_COMPILES = ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false")
# xdist's workers import this file again with the controller's flags already set.
_flags = os.environ.get("XLA_FLAGS", "").split()
_flags += [f for f in ("--xla_force_host_platform_device_count=8",) if f not in _flags]
_flags += [f for f in _FAST_COMPILES if f not in _flags and _known_to_xla(f)]
os.environ["XLA_FLAGS"] = " ".join(_flags)
os.environ["JAX_PLATFORMS"] = "cpu"
# Generated datasets are shared by the tests of one session, and by their subprocesses.
os.environ.setdefault("SCALING_DATA_DIR", tempfile.mkdtemp(prefix="scaling-data-"))
# One persistent compilation cache for the session and its subprocesses: the many tiny
# models of the suite compile once, and every later test that builds the same program
# reads it from disk.
os.environ.setdefault("SCALING_CACHE_DIR", tempfile.mkdtemp(prefix="scaling-compile-"))

# The host's measured matmul peak is cached under $XDG_CACHE_HOME: the suite's, measured
# while its workers share the cores, stays out of the user's.
os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="scaling-cache-"))

# Artifacts that tests in several files compare against (a reference sweep) are built once
# per session here, by whichever worker needs them first (tests/helpers.py: built_once).
os.environ.setdefault("SCALING_TEST_SHARED", tempfile.mkdtemp(prefix="scaling-shared-"))

from scaling import compile_cache, host_memory  # noqa: E402  (after the flags above)

host_memory.reuse_freed_memory()  # as the `scaling` command does, before JAX's threads start

compile_cache.enable(os.environ["SCALING_CACHE_DIR"])


import logging  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def warnings_log(caplog):
  """What the toolkit logged (its logger does not propagate to pytest's root handler)."""
  logger = logging.getLogger("scaling")
  logger.addHandler(caplog.handler)
  yield caplog
  logger.removeHandler(caplog.handler)


@pytest.fixture(scope="session")
def trained_lm():
  """A tiny model (GELU, grouped-query heads, tied embeddings) trained on 1-2 digit sums
  until it answers most of them: built once per session, shared by every worker. Tests
  read it and write nothing into it."""
  import jax
  from scaling import exits
  from scaling.train import loop
  from tests.helpers import built_once, tiny_config

  def build(workdir):
    cfg = tiny_config("train.steps=400", "train.batch_size=64", "train.learning_rate=0.01",
                      "data.min_digits=1", "data.max_digits=2", "data.num_eval=128",
                      "train.log_every=100", "checkpoint.every_steps=0")
    # One device: the tests are of the trained model, not of its layout.
    assert loop.train(cfg, workdir, devices=jax.devices()[:1]) == exits.OK

  return built_once("trained-lm", build)


# The longest files first (their test time on 2 cores, about 35-110 s each). Each worker
# takes one file at a time in collection order, so a long file collected last would run
# alone at the end while the other worker idles.
LONGEST_FIRST = ("test_sweep.py", "test_slurm.py", "test_diffusion_train.py",
                 "test_gpu_check.py", "test_records.py", "test_resume.py", "test_gan.py",
                 "test_multiprocess.py", "test_user_errors.py", "test_mup.py",
                 "test_sweep_axes.py", "test_step.py")


def pytest_collection_modifyitems(items):
  rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
  items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable within a file
