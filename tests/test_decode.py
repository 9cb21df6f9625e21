"""KV-cache decoding equals full forward passes; greedy decoding equals teacher forcing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling import mesh as mesh_lib
from scaling.generate import decode
from tests.helpers import make_lm as make_model
from tests.helpers import tiny_config

VOCAB = 288
PROMPT_LENGTHS = [3, 7, 5, 1]
NEW = 6


def _sequences(seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(4, VOCAB, (len(PROMPT_LENGTHS), max(PROMPT_LENGTHS) + NEW)).astype(np.int32)


def _cached_logits(model, seqs):
  """Prefill the right-padded prompts, then feed each sequence's continuation token by token."""
  lengths = np.asarray(PROMPT_LENGTHS)
  B, P = len(lengths), max(lengths)
  prompts = np.where(np.arange(P) < lengths[:, None], seqs[:, :P], 0)
  cache = model.init_cache(B, P + NEW)
  step = jax.jit(lambda m, t, p, c: m(t, p, cache=c))
  logits, cache = step(model, jnp.asarray(prompts), jnp.broadcast_to(jnp.arange(P), (B, P)), cache)
  out = [logits[np.arange(B), lengths - 1]]
  for s in range(NEW - 1):
    token = seqs[np.arange(B), lengths + s][:, None]
    logits, cache = step(model, jnp.asarray(token), jnp.asarray((lengths + s)[:, None]), cache)
    out.append(logits[:, 0])
  return np.stack(out, axis=1)  # [B, NEW, V]: predictions for positions len .. len + NEW - 1


def _full_logits(model, seqs):
  full = np.asarray(jax.jit(lambda m, t: m(t))(model, jnp.asarray(seqs)))
  lengths = np.asarray(PROMPT_LENGTHS)
  return np.stack([full[b, lengths[b] - 1:lengths[b] - 1 + NEW] for b in range(len(lengths))])


@pytest.mark.parametrize("scan", [False, True])
def test_cache_matches_full_forward_on_one_device(scan):
  model = make_model(tiny_config(f"model.scan_layers={scan}").model, VOCAB, seed=1)
  seqs = _sequences()
  np.testing.assert_allclose(_cached_logits(model, seqs), _full_logits(model, seqs),
                             atol=1e-5, rtol=0)


@pytest.mark.parametrize("scan", [False, True])
def test_cache_matches_full_forward_on_a_mesh(scan):
  cfg = tiny_config(f"model.scan_layers={scan}", "model.n_kv_heads=4", "mesh.data=2",
                    "mesh.fsdp=1", "mesh.tensor=4")
  mesh = mesh_lib.make_mesh(cfg.mesh)
  rules = mesh_lib.complete_rules(cfg.mesh.rules)
  reference = make_model(cfg.model, VOCAB, seed=1)
  seqs = _sequences()
  with mesh_lib.activate(mesh, rules):
    model = make_model(cfg.model, VOCAB, seed=1)
    assert len(model.embed_VD[...].sharding.device_set) == 8
    cached = _cached_logits(model, seqs)
  np.testing.assert_allclose(cached, _full_logits(reference, seqs), atol=1e-5, rtol=0)


def test_generate_stops_per_sequence_and_reports_logprobs():
  model = make_model(tiny_config().model, VOCAB, seed=1)
  seqs = _sequences()
  lengths = np.asarray(PROMPT_LENGTHS)
  prompts = np.where(np.arange(max(lengths)) < lengths[:, None], seqs[:, :max(lengths)], 0)
  free = decode.generate(model, prompts, lengths, max_new_tokens=NEW)
  # Stop on the token that sequence 0 produces second: it ends there, the others go on.
  stop = int(free.tokens[0, 1])
  out = decode.generate(model, prompts, lengths, max_new_tokens=NEW, stop_tokens=(stop,))
  tokens, lengths_out = np.asarray(out.tokens), np.asarray(out.lengths)
  for b in range(len(lengths)):
    hits = np.flatnonzero(np.asarray(free.tokens[b]) == stop)
    expected = hits[0] + 1 if len(hits) else NEW
    assert lengths_out[b] == expected
    np.testing.assert_array_equal(tokens[b, :expected], np.asarray(free.tokens[b, :expected]))
    assert (tokens[b, expected:] == 0).all()
  # The reported log-probs are those of a full forward pass over prompt + continuation.
  for b in range(len(lengths)):
    seq = np.concatenate([prompts[b, :lengths[b]], np.asarray(free.tokens[b])])[None]
    logp_full = np.asarray(jax.nn.log_softmax(model(jnp.asarray(seq))))[0]
    expected = logp_full[lengths[b] - 1 + np.arange(NEW), np.asarray(free.tokens[b])]
    np.testing.assert_allclose(np.asarray(free.logprobs[b]), expected, atol=1e-5)
