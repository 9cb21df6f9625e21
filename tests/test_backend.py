"""Backend layouts: each computes the same maths, and the model code chooses none itself."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling.models import backend
from scaling.models.backend import einsum_attention
from tests.helpers import LM_CONFIG, ROOT, TINY, make_lm, tiny_config
from tests.test_dit import dit_config, inputs, make

VOCAB = 288


@pytest.mark.parametrize("head_dim", [16, 64])
@pytest.mark.parametrize("mask", ["causal", "segments", "cache", "none"])
def test_both_attention_layouts_equal_jax_attention(head_dim, mask):
  """The head-major layout (long heads on CPU) and the [B, L, H, K] one compute the same
  attention as `jax.nn.dot_product_attention`, values and gradients, with grouped heads."""
  B, L, H, G = 2, 12, 4, 2
  S = 20 if mask == "cache" else L
  keys = jax.random.split(jax.random.key(0), 3)
  q = jax.random.normal(keys[0], (B, L, H, head_dim))
  k, v = (jax.random.normal(key, (B, S, G, head_dim)) for key in keys[1:])
  causal, mask_B1LS = mask == "causal", None
  if mask == "segments":
    segments = jnp.array([[1] * 5 + [2] * 7, [1] * 12])
    same = segments[:, :, None] == segments[:, None, :]
    mask_B1LS = (same & jnp.tril(jnp.ones((L, L), bool)))[:, None]
  elif mask == "cache":  # queries at positions 5..16 of a 20-slot cache
    mask_B1LS = jnp.broadcast_to(jnp.arange(S)[None, :] <= jnp.arange(5, 5 + L)[:, None],
                                 (B, 1, L, S))

  def reference(q, k, v):
    return jax.nn.dot_product_attention(q, k, v, mask=mask_B1LS, is_causal=causal,
                                        implementation="xla")

  def ours(head_major):
    return lambda q, k, v: einsum_attention(q, k, v, mask_B1LS, causal,
                                            head_major=head_major)

  loss = lambda f: lambda q, k, v: (f(q, k, v) * jnp.cos(f(q, k, v))).sum()
  expected = reference(q, k, v)
  expected_grads = jax.grad(loss(reference), argnums=(0, 1, 2))(q, k, v)
  for head_major in (True, False):
    np.testing.assert_allclose(ours(head_major)(q, k, v), expected, atol=2e-5)
    grads = jax.grad(loss(ours(head_major)), argnums=(0, 1, 2))(q, k, v)
    for got, want in zip(grads, expected_grads):
      np.testing.assert_allclose(got, want, atol=5e-5)


def _both_layouts(monkeypatch, fn):
  """`fn()` traced with the CPU layouts, then with those of the other backends."""
  cpu = fn()
  monkeypatch.setattr(backend, "on_cpu", lambda: False)
  return cpu, fn()


@pytest.mark.parametrize("overrides", [(), ("model.mlp='swiglu'", "model.d_model=128")])
def test_lm_computes_the_same_in_every_backends_layout(monkeypatch, overrides):
  """Dense layers on rows or on [B, L, ...], attention as einsums or as
  `jax.nn.dot_product_attention`: the same logits and gradients, packed documents and
  a KV cache included (d_model 128: head dim 32 with rows, 64 head-major)."""
  cfg = tiny_config(*overrides)
  model = make_lm(cfg.model, VOCAB)
  rng = np.random.default_rng(0)
  tokens_BL = jnp.asarray(rng.integers(4, VOCAB, (2, 16)), jnp.int32)
  segments_BL = jnp.asarray([[1] * 6 + [2] * 10, [1] * 16])
  positions_BL = jnp.asarray([list(range(6)) + list(range(10)), list(range(16))])

  def run():
    def loss(model):
      logits = model(tokens_BL, positions_BL, segments_BL)
      return (logits * jnp.cos(logits)).mean(), logits

    (_, logits), grads = jax.jit(nnx.value_and_grad(loss, has_aux=True))(model)
    prompt_positions_BL = jnp.broadcast_to(jnp.arange(5), (2, 5))
    cached, _ = jax.jit(lambda m: m(tokens_BL[:, :5], prompt_positions_BL,
                                    cache=m.init_cache(2, 8)))(model)
    return logits, nnx.to_flat_state(grads), cached

  (cpu_logits, cpu_grads, cpu_cached), (logits, grads, cached) = _both_layouts(monkeypatch, run)
  np.testing.assert_allclose(logits, cpu_logits, atol=1e-5)
  np.testing.assert_allclose(cached, cpu_cached, atol=1e-5)
  for (path, got), (_, want) in zip(grads, cpu_grads):
    np.testing.assert_allclose(got.get_value(), want.get_value(), atol=1e-5, err_msg=str(path))


def test_dit_computes_the_same_in_every_backends_layout(monkeypatch):
  model, (x, t, y) = make(dit_config()), inputs()
  cpu, other = _both_layouts(monkeypatch, lambda: jax.jit(lambda m: m(x, t, y))(model))
  np.testing.assert_allclose(other, cpu, atol=1e-5)


def test_model_code_leaves_backend_choices_to_the_backend_module():
  """Only scaling/models/backend.py asks which backend it runs on."""
  models = os.path.join(ROOT, "scaling", "models")
  for name in sorted(os.listdir(models)):
    if name.endswith(".py") and name != "backend.py":
      with open(os.path.join(models, name)) as f:
        source = f.read()
      for word in ("default_backend", "on_cpu", "einsum_attention", "dot_product_attention"):
        assert word not in source, f"{name} names {word}: backend choices live in backend.py"


def test_hlo_fingerprint_names_the_compiled_step(capsys):
  """tools/hlo_fingerprint.py: the same config hashes alike in two compilations (names and
  source lines aside), a different model does not."""
  from tests.test_tools import load_tool
  tool = load_tool("hlo_fingerprint")
  digests = []
  for d_ff in (64, 64, 96):
    tool.main([f"--config={LM_CONFIG}", *(f"--config.{o}" for o in TINY),
               f"--config.model.d_ff={d_ff}"])
    digests.append(capsys.readouterr().out.split()[0])
  assert digests[0] == digests[1] != digests[2], digests
