"""Parameter and FLOP counts of the language model, from its config alone."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ParamCounts:
  total: int
  embedding: int       # input embedding, plus the untied output head
  non_embedding: int   # everything else (attention, MLP, norms)

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


def lm_params(model_cfg, vocab_size: int) -> ParamCounts:
  """Counts parameters exactly as `scaling.models.lm.LM` creates them."""
  D, F, H, G = model_cfg.d_model, model_cfg.d_ff, model_cfg.n_heads, model_cfg.n_kv_heads
  K = D // H
  attention = D * H * K * 2 + D * G * K * 2          # q, o; k, v
  mlp = D * F * (3 if model_cfg.mlp == "swiglu" else 2)
  norms = 2 * D
  non_embedding = model_cfg.n_layers * (attention + mlp + norms) + D  # + final norm
  embedding = vocab_size * D * (1 if model_cfg.tie_embeddings else 2)
  return ParamCounts(embedding + non_embedding, embedding, non_embedding)


def lm_flops_per_token(model_cfg, vocab_size: int, seq_len: int) -> float:
  """Training FLOPs per token (forward + backward), PaLM-style.

      flops/token = 6 * (N_non_embedding + V * D) + 12 * n_layers * H * K * L

  The first term is the matmuls: 2 FLOPs per weight per token forward, twice that
  backward, over every weight used as a matmul (the unembedding V * D counts, the
  embedding lookup does not). The second is attention's two L x L products (scores and
  the weighted sum of values), 2 * 2 * L * H * K forward per layer, times three; as in
  PaLM and MaxText it counts the full L x L square, not the causal half.
  """
  counts = lm_params(model_cfg, vocab_size)
  D, H = model_cfg.d_model, model_cfg.n_heads
  K = D // H
  matmul_params = counts.non_embedding + vocab_size * D
  return 6.0 * matmul_params + 12.0 * model_cfg.n_layers * H * K * seq_len
