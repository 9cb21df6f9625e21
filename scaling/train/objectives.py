"""Training objectives and the teacher-forced statistics evaluated beside them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def lm_loss(logits_BLV: jax.Array, targets_BL: jax.Array, mask_BL: jax.Array):
  """Mean next-token cross-entropy over the masked positions of the whole batch."""
  nll_BL = optax.softmax_cross_entropy_with_integer_labels(logits_BLV, targets_BL)
  n_tokens = jnp.maximum(mask_BL.sum(), 1.0)
  return (nll_BL * mask_BL).sum() / n_tokens


def lm_eval_sums(logits_BLV: jax.Array, targets_BL: jax.Array, mask_BL: jax.Array):
  """Sums over a batch, to be added up across batches and divided at the end.

  `exact`: examples whose every masked target is the argmax, i.e. what greedy decoding
  would produce under teacher forcing.
  """
  nll_BL = optax.softmax_cross_entropy_with_integer_labels(logits_BLV, targets_BL)
  correct_BL = (logits_BLV.argmax(-1) == targets_BL) | (mask_BL == 0)
  has_target_B = mask_BL.sum(-1) > 0
  return {
      "nll": (nll_BL * mask_BL).sum(),
      "tokens": mask_BL.sum(),
      "correct_tokens": ((logits_BLV.argmax(-1) == targets_BL) * mask_BL).sum(),
      "exact": (correct_BL.all(-1) & has_target_B).sum(),
      "examples": has_target_B.sum(),
  }
