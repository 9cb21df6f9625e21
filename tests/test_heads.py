"""What heads do (`scaling.analysis.heads`): the probe pass is the model's forward pass with
the attention written out, and the induction score and in-context measures are their
definitions on constructed patterns."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling.analysis import head_report, heads
from scaling.families import family_for
from tests.helpers import tiny_config


@pytest.mark.parametrize("overrides", [
    # Grouped-query attention (4 query heads share 2 key/value heads), an untied head.
    ("model.tie_embeddings=False",),
    # One key/value head, muP's score and readout multipliers (its untied head would start
    # at zero: every logit 0, whatever a head does).
    ("model.n_kv_heads=1", "model.parametrization='mup'", "model.base_width=16"),
    ("model.mlp='none'",),  # attention only
])
def test_the_probe_reproduces_the_models_logits(overrides):
  family = family_for(tiny_config(*overrides))
  model = family.make_model(nnx.Rngs(0))
  tokens = heads.repeated_random_tokens(3, 7, family.vocab_size)
  logits, probs, outs = heads.probe(model, tokens)
  np.testing.assert_allclose(logits, np.asarray(model(jnp.asarray(tokens))), atol=2e-5)
  assert probs.shape == (2, 3, 4, 15, 15) and outs.shape == (2, 3, 15, 4, 8)
  np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-5)
  assert np.all(np.triu(probs, 1) == 0)  # causal
  # A head replaced by its own mean output changes the logits; none replaced does not.
  means = outs.mean(axis=(1, 2))
  ablated, _, _ = heads.probe(model, tokens, [(1, 0)], means)
  assert np.abs(ablated - logits).max() > 1e-4
  np.testing.assert_allclose(heads.probe(model, tokens, [], means)[0], logits)


def test_induction_score_is_its_definition_on_built_patterns():
  T, L = 6, 13  # BOS, 6 tokens, the same 6 again
  causal = np.tril(np.ones((L, L)))
  uniform = causal / causal.sum(-1, keepdims=True)
  induction = uniform.copy()
  previous = np.eye(L, k=-1)
  previous[0, 0] = 1
  for j in range(1, T):
    induction[T + j] = 0
    induction[T + j, j + 1] = 1
  probs = np.stack([induction, uniform, previous])[None, None]  # [N=1, B=1, H=3, L, L]
  scores = heads.induction_scores(probs, T)
  expected_uniform = np.mean([1 / (T + j + 1) for j in range(1, T)])
  np.testing.assert_allclose(scores, [[1.0, expected_uniform, 0.0]])


def test_repeat_and_in_context_measures():
  T, V = 4, 10
  tokens = heads.repeated_random_tokens(2, T, V)
  assert (tokens[:, 1:T + 1] == tokens[:, T + 1:]).all() and (tokens[:, 0] == 1).all()
  # A model certain of every repeated token and uniform before: the drop is log V.
  logits = np.zeros((2, 2 * T + 1, V))
  logits[:, T:-1] = np.where(np.arange(V) == tokens[:, T + 1:, None], 50.0, 0.0)
  assert heads.repeat_loss_drop(logits, tokens, T) == pytest.approx(np.log(V), abs=1e-3)
  loss = np.linspace(3, 1, 512)  # later positions easier
  out = heads.in_context_improvement(loss, np.full(512, 100))
  assert (out["early_position"], out["late_position"]) == (50, 500)
  assert out["improvement"] == pytest.approx(loss[50] - loss[500])
  assert heads.in_context_improvement(loss, np.full(512, 3))["improvement"] is None


def test_positions_are_compared_within_rows_one_piece_of_text_fills():
  positions = np.array([[0, 1, 2, 3],     # one piece fills the row: kept
                        [0, 1, 0, 1],     # two pieces: their late positions are missing
                        [2, 3, 0, 1],     # a continuation, then a new piece
                        [0, 1, 2, 3]])
  np.testing.assert_array_equal(head_report.whole_rows(positions), [True, False, False, True])
