"""The LM: parameter counts, FLOPs, scan/remat equivalence, causality, document masking."""

import contextlib
import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.ad_checkpoint import print_saved_residuals

from scaling import config as config_lib
from scaling.models import counting
from scaling.families.lm import lm_loss
from tests.helpers import make_lm as make_model
from tests.helpers import LM_CONFIG, tiny_config

VOCAB = 288


def _model(*overrides, seed=0):
  cfg = tiny_config(*overrides)
  return make_model(cfg.model, VOCAB, seed), cfg


def _tokens(batch=2, length=16, seed=0):
  return jnp.asarray(np.random.default_rng(seed).integers(4, VOCAB, (batch, length)), jnp.int32)


@pytest.mark.parametrize("overrides", [
    (), ("model.mlp='swiglu'",), ("model.mlp='none'",), ("model.tie_embeddings=False",),
    ("model.n_kv_heads=1",),
    ("model.n_layers=3", "model.d_ff=96"),
])
def test_param_counts_match_the_model(overrides):
  model, cfg = _model(*overrides)
  actual = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
  counts = counting.lm_params(cfg.model, VOCAB)
  assert counts.total == actual
  assert counts.embedding == VOCAB * 32 * (1 if cfg.model.tie_embeddings else 2)


@pytest.mark.parametrize("size", ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"])
def test_size_ladder_spans_5k_to_2m(size):
  cfg = config_lib.load(f"{LM_CONFIG}:size={size}")
  total = counting.lm_params(cfg.model, cfg.data.vocab_size).total
  assert 4_000 <= total <= 2_500_000


def test_flops_formula_matches_compiler_count():
  model, cfg = _model("model.n_layers=2")
  graphdef, params = nnx.split(model)
  tokens = _tokens(batch=4, length=16)

  def loss(params):
    logits = nnx.merge(graphdef, params)(tokens)
    return lm_loss(logits, tokens, jnp.ones(tokens.shape))

  compiled = jax.jit(jax.value_and_grad(loss)).lower(params).compile()
  xla_flops = compiled.cost_analysis()["flops"]
  ours = counting.lm_flops_per_token(cfg.model, VOCAB, 16) * tokens.size
  # XLA also counts elementwise work (norms, softmax, optimizer-free here); matmuls dominate.
  assert 0.8 * ours <= xla_flops <= 1.5 * ours, (xla_flops, ours)


def test_scan_and_unrolled_layers_agree():
  scanned, _ = _model("model.scan_layers=True")
  unrolled, _ = _model("model.scan_layers=False")
  tokens = _tokens()
  np.testing.assert_allclose(scanned(tokens), unrolled(tokens), atol=1e-5, rtol=0)


def _saved_residuals(fn, *args) -> list[str]:
  """What the backward pass of `fn` keeps from its forward pass, as jax reports it."""
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    print_saved_residuals(fn, *args)
  return out.getvalue().splitlines()


@pytest.mark.parametrize("remat", ["full", "dots_saveable"])
@pytest.mark.parametrize("scan", [True, False])
def test_remat_gives_the_same_gradients(remat, scan):
  """The same gradients from fewer saved activations: remat takes effect, and its policy
  too (saving matrix products keeps more than saving nothing)."""
  tokens = _tokens()

  def grads(*overrides):
    model, _ = _model(f"model.scan_layers={scan}", *overrides)
    graphdef, params = nnx.split(model)
    fn = lambda p: lm_loss(nnx.merge(graphdef, p)(tokens), tokens,
                                      jnp.ones(tokens.shape))
    return jax.jit(jax.grad(fn))(params), len(_saved_residuals(fn, params))

  plain, kept = grads()
  rematted, kept_rematted = grads(f"model.remat='{remat}'")
  for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(rematted)):
    np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-5)
  assert kept_rematted < kept
  if remat == "dots_saveable":
    _, kept_full = grads("model.remat='full'")
    assert kept_full < kept_rematted


def test_attention_is_causal():
  model, _ = _model()
  tokens = _tokens(batch=1)
  changed = tokens.at[0, 10].set((tokens[0, 10] + 1) % VOCAB)
  a, b = model(tokens), model(changed)
  np.testing.assert_allclose(a[0, :10], b[0, :10], atol=1e-6)
  assert not np.allclose(a[0, 10:], b[0, 10:])


def test_segment_ids_isolate_packed_documents():
  model, _ = _model()
  first, second = _tokens(batch=1, length=6, seed=1), _tokens(batch=1, length=10, seed=2)
  packed = jnp.concatenate([first, second], axis=1)
  segments = jnp.asarray([[1] * 6 + [2] * 10])
  positions = jnp.asarray([list(range(6)) + list(range(10))])
  logits = model(packed, positions, segments)
  np.testing.assert_allclose(logits[:, :6], model(first), atol=1e-5)
  np.testing.assert_allclose(logits[:, 6:], model(second), atol=1e-5)


def test_bfloat16_compute_keeps_float32_params_and_tracks_float32():
  f32, _ = _model()
  bf16, _ = _model("model.dtype='bfloat16'")
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(nnx.state(bf16, nnx.Param)))
  tokens = _tokens()
  a, b = f32(tokens), bf16(tokens)
  assert b.dtype == jnp.float32
  assert np.abs(np.asarray(a) - np.asarray(b)).max() < 0.1 * np.abs(np.asarray(a)).max()
