"""Small configs and run-directory readers shared by the tests."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys

import numpy as np

from scaling import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LM_CONFIG = os.path.join(ROOT, "configs", "lm", "arithmetic.py")
DIT_CONFIG = os.path.join(ROOT, "configs", "diffusion", "digits.py")

# A model whose every sharded dimension divides meshes of up to 8 devices per axis group.
TINY = [
    "model.d_model=32", "model.n_layers=2", "model.n_heads=4", "model.n_kv_heads=2",
    "model.d_ff=64",
    "data.num_train=4000", "data.num_eval=256",
    "train.batch_size=16", "train.warmup_steps=2", "train.log_every=1",
    "eval.every_steps=0", "eval.batch_size=64", "eval.max_examples=128",
]


# The DiT counterpart of TINY.
TINY_DIT = [
    "model.d_model=32", "model.n_layers=2", "model.n_heads=4", "model.n_kv_heads=2",
    "model.d_ff=64", "train.batch_size=16", "train.warmup_steps=2", "train.log_every=1",
    "eval.every_steps=0", "eval.batch_size=64", "eval.max_examples=128",
    "diffusion.timesteps=100", "diffusion.eval_timesteps=(10,50,90)",
    "diffusion.sample_steps=10", "checkpoint.every_steps=0",
]


def built_once(name: str, build) -> str:
  """The directory `build(directory)` writes, built once per test session and shared by
  every xdist worker: the first to ask builds it while the others wait on a lock. A build
  that raises leaves nothing behind, so the next test to ask builds it again."""
  directory = os.path.join(os.environ["SCALING_TEST_SHARED"], name)
  os.makedirs(os.path.dirname(directory), exist_ok=True)
  with open(f"{directory}.lock", "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not os.path.exists(f"{directory}.built"):
      shutil.rmtree(directory, ignore_errors=True)
      build(directory)
      open(f"{directory}.built", "w").close()
  return directory


def tiny_config(*overrides: str):
  cfg = config_lib.load(LM_CONFIG)
  config_lib.apply_overrides(cfg, [*TINY, *overrides])
  return cfg


def tiny_dit(*overrides: str):
  cfg = config_lib.load(DIT_CONFIG)
  config_lib.apply_overrides(cfg, [*TINY_DIT, *overrides])
  return cfg


def cli_args(*overrides: str) -> list[str]:
  return [f"--config={LM_CONFIG}", *(f"--config.{o}" for o in (*TINY, *overrides))]


def scaling_cmd(*args: str) -> list[str]:
  return [sys.executable, "-m", "scaling.cli", *args]


DEVICE_COUNT = "--xla_force_host_platform_device_count"


def one_device_env() -> dict:
  """The session's environment with one CPU device instead of eight, for processes whose
  test is not about sharding: a sweep's tiny trials then cost about a sixth less CPU
  (simulated devices split every small op eight ways on two cores)."""
  flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(DEVICE_COUNT)]
  return dict(os.environ, XLA_FLAGS=" ".join([*flags, f"{DEVICE_COUNT}=1"]))


def one_device_children(monkeypatch) -> None:
  """Processes this test starts (a sweep's trials, a reproduction) see one device."""
  monkeypatch.setenv("XLA_FLAGS", one_device_env()["XLA_FLAGS"])


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
  return subprocess.run(scaling_cmd(*args), capture_output=True, text=True, cwd=ROOT,
                        **kwargs)


def losses(workdir: str) -> dict[int, float]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return {r["step"]: r["loss"] for r in map(json.loads, f)}


def summary(workdir: str) -> dict:
  with open(os.path.join(workdir, "summary.json")) as f:
    return json.load(f)


TIMINGS = {"tokens_per_second", "samples_per_second", "step_time_s", "mfu"}


def records(workdir: str) -> tuple[list[dict], dict]:
  """metrics.jsonl without timings, and summary.json without wall times and the sessions'
  `segments`: what a resumed run must reproduce exactly."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    metrics = [{k: v for k, v in json.loads(line).items() if k not in TIMINGS} for line in f]
  record = summary(workdir)
  record.pop("wall_time_s")
  record.pop("first_step_s")
  record.pop("segments")
  return metrics, record


def checkpoint_state(workdir: str) -> dict:
  """The whole train state of a run's latest checkpoint, as saved."""
  import orbax.checkpoint as ocp
  with ocp.CheckpointManager(os.path.join(workdir, "checkpoints"),
                             item_names=("state",)) as manager:
    restored = manager.restore(manager.latest_step(),
                               args=ocp.args.Composite(state=ocp.args.PyTreeRestore()))
  return restored["state"]


def flat_arrays(tree) -> dict[str, np.ndarray]:
  """A pytree's leaves as arrays, keyed by their path."""
  import jax
  return {jax.tree_util.keystr(p): np.asarray(v)
          for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


# The steps of the short runs that sharding and resume tests compare, checkpointed at 2, 4.
FOUR_STEPS = ("train.steps=4", "checkpoint.every_steps=2", "checkpoint.max_to_keep=5",
              "checkpoint.async_save=False", "mesh.data=1")


def train_one_device(cfg, workdir: str) -> str:
  """Trains `cfg` on one device into `workdir` (the reference the tests compare with)."""
  import jax
  from scaling.train import loop
  assert loop.train(cfg, workdir, devices=jax.devices()[:1]) == 0
  return workdir


def assert_sharded_equals_one_device(cfg, one: str, sharded: str) -> None:
  """Trains `cfg` again on a (2, 2, 2) mesh of the eight devices: the same losses at every
  step and the same final state as the one-device run `one`, to float rounding."""
  import ml_collections
  from scaling.train import loop
  sharded_cfg = ml_collections.ConfigDict(cfg.to_dict())
  config_lib.apply_overrides(sharded_cfg, ["mesh.data=2", "mesh.fsdp=2", "mesh.tensor=2"])
  assert loop.train(sharded_cfg, sharded) == 0
  expected = losses(one)
  assert sorted(expected) == [1, 2, 3, 4] and len(set(expected.values())) == 4
  np.testing.assert_allclose([losses(sharded)[s] for s in range(1, 5)],
                             [expected[s] for s in range(1, 5)], rtol=1e-5, atol=0)
  a, b = flat_arrays(checkpoint_state(one)), flat_arrays(checkpoint_state(sharded))
  assert a.keys() == b.keys()
  for path in a:
    np.testing.assert_allclose(b[path], a[path], rtol=0, atol=1e-5, err_msg=path)


def assert_resume_is_exact(cfg, full: str, resumed: str) -> None:
  """A copy of the one-device run `full` without its last checkpoint, resumed: the same
  losses and, bit for bit, the same state (parameters, optimizer, EMA)."""
  import jax
  from scaling.train import loop
  shutil.copytree(full, resumed)
  shutil.rmtree(os.path.join(resumed, "checkpoints", "4"))
  os.remove(os.path.join(resumed, "summary.json"))
  assert loop.train(cfg, resumed, devices=jax.devices()[:1]) == 0
  assert losses(resumed) == losses(full)
  a, b = flat_arrays(checkpoint_state(full)), flat_arrays(checkpoint_state(resumed))
  assert a.keys() == b.keys() and len(a) > 20
  for path in a:
    np.testing.assert_array_equal(b[path], a[path], err_msg=path)


def final_params(workdir: str, field: str = "params") -> dict[str, np.ndarray]:
  """The parameters (or `field`, e.g. "ema") of a run's latest checkpoint, flat by path."""
  import orbax.checkpoint as ocp
  directory = os.path.join(workdir, "checkpoints")
  with ocp.CheckpointManager(directory, item_names=("state",)) as manager:
    step = manager.latest_step()
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore()))
  params = restored["state"][field]
  flat = {}

  def walk(prefix, node):
    if isinstance(node, dict):
      for k, v in node.items():
        walk(f"{prefix}/{k}", v)
    else:
      flat[prefix] = np.asarray(node)

  walk("", params)
  return flat


def make_lm(model_cfg, vocab_size: int, seed: int = 0):
  """The language model of a `model` section, outside any mesh (on one device)."""
  from flax import nnx
  from scaling.families.base import eager_sharding
  from scaling.models.lm import LM
  with eager_sharding():
    return LM(model_cfg, vocab_size, rngs=nnx.Rngs(params=seed))


def dot_flops(jaxpr) -> int:
  """FLOPs of every matrix product in a jaxpr (2 per multiply-add), nested ones included."""
  total = 0
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "dot_general":
      (contract, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval.shape
      out = eqn.outvars[0].aval.shape
      total += 2 * int(np.prod(out)) * int(np.prod([lhs[d] for d in contract]))
    for value in eqn.params.values():
      for sub in (value if isinstance(value, (tuple, list)) else (value,)):
        if hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
          total += dot_flops(sub.jaxpr)
        elif hasattr(sub, "eqns"):
          total += dot_flops(sub)
  return total


def add_default_field(monkeypatch, section: str, name: str, value):
  """Adds `section.name` with default `value` to the LM family's schema, as a newer
  version of the toolkit would; returns (the old schema, the new one)."""
  from scaling.families import lm
  schema = lm.base_config

  def with_new_field():
    cfg = schema()
    with cfg.unlocked():
      cfg[section][name] = value
    return cfg

  monkeypatch.setattr(lm, "base_config", with_new_field)
  monkeypatch.setattr(lm.LMFamily, "base_config", staticmethod(with_new_field))
  return schema, with_new_field
