"""Parameter and FLOP counts of the language model, the DiT and the GAN, from their configs
alone."""

from __future__ import annotations

import dataclasses

from scaling.models.dit import TIME_FREQUENCIES


@dataclasses.dataclass(frozen=True)
class ParamCounts:
  total: int
  embedding: int       # input embedding, plus the untied output head
  non_embedding: int   # everything else (attention, MLP, norms)

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


def mlp_params(model_cfg) -> int:
  """One block's feed-forward weights: two matrices, three when gated, none without."""
  matrices = {"gelu": 2, "swiglu": 3, "none": 0}[model_cfg.mlp]
  return model_cfg.d_model * model_cfg.d_ff * matrices


def lm_params(model_cfg, vocab_size: int) -> ParamCounts:
  """Counts parameters exactly as `scaling.models.lm.LM` creates them."""
  D, F, H, G = model_cfg.d_model, model_cfg.d_ff, model_cfg.n_heads, model_cfg.n_kv_heads
  K = D // H
  attention = D * H * K * 2 + D * G * K * 2          # q, o; k, v
  mlp = mlp_params(model_cfg)
  norms = (1 if model_cfg.mlp == "none" else 2) * D
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


def _dit_parts(model_cfg, image_size: int, channels: int, num_classes: int) -> dict:
  """Parameters of `scaling.models.dit.DiT` by where they are used."""
  D, F, H, G = model_cfg.d_model, model_cfg.d_ff, model_cfg.n_heads, model_cfg.n_kv_heads
  K, P = D // H, model_cfg.patch_size ** 2 * channels
  attention = D * H * K * 2 + D * G * K * 2
  mlp = mlp_params(model_cfg)
  return {
      # weights applied to every patch token (matmuls)
      "per_token": P * D + model_cfg.n_layers * (attention + mlp) + D * P,
      # weights applied once per image, to the conditioning vector (matmuls)
      "per_image": TIME_FREQUENCIES * D + D * D + (6 * model_cfg.n_layers + 2) * D * D,
      "biases": D + 2 * D + (6 * model_cfg.n_layers + 2) * D + P,
      "class_table": (num_classes + 1) * D,
  }


def dit_params(model_cfg, image_size: int, channels: int, num_classes: int) -> ParamCounts:
  """Counts parameters exactly as `scaling.models.dit.DiT` creates them.

  `embedding` is the class table (a lookup, like the LM's token embedding); the patch
  projection is a matmul on every token and counts as non-embedding.
  """
  parts = _dit_parts(model_cfg, image_size, channels, num_classes)
  embedding = parts["class_table"]
  non_embedding = parts["per_token"] + parts["per_image"] + parts["biases"]
  return ParamCounts(embedding + non_embedding, embedding, non_embedding)


def dit_flops_per_sample(model_cfg, image_size: int, channels: int) -> float:
  """Training FLOPs per image (forward + backward), counted as `lm_flops_per_token` does.

      flops/image = 6 * (N_token * L + N_image) + 12 * n_layers * H * K * L^2

  with L = (image_size / patch_size)^2 patch tokens, N_token the matmul weights applied to
  every token (patch embedding, attention, MLP, output projection) and N_image those
  applied once per image to the conditioning vector (timestep MLP, adaLN projections).
  Biases, norms, the class lookup and elementwise work are left out; attention is the
  full (non-causal) L x L square.
  """
  parts = _dit_parts(model_cfg, image_size, channels, num_classes=0)
  L = (image_size // model_cfg.patch_size) ** 2
  H = model_cfg.n_heads
  K = model_cfg.d_model // H
  return (6.0 * (parts["per_token"] * L + parts["per_image"])
          + 12.0 * model_cfg.n_layers * H * K * L * L)


def _gan_parts(model_cfg, channels: int, num_classes: int, latent_dim: int) -> dict:
  """Parameters of `scaling.models.gan.GAN`'s two networks by where they are used."""
  D, F, H, G = model_cfg.d_model, model_cfg.d_ff, model_cfg.n_heads, model_cfg.n_kv_heads
  K, P, n = D // H, model_cfg.patch_size ** 2 * channels, model_cfg.n_layers
  blocks = n * (D * H * K * 2 + D * G * K * 2 + mlp_params(model_cfg))
  return {
      "generator": {
          "per_token": blocks + D * P,                                  # blocks, output
          "per_image": latent_dim * D + D * D + (6 * n + 2) * D * D,    # mapping, adaLN
          "biases": 2 * D + (6 * n + 2) * D + P,
          "class_table": num_classes * D,
      },
      "discriminator": {
          "per_token": P * D + blocks,                                  # patches, blocks
          "per_image": 6 * n * D * D + D,         # adaLN; the head on pooled features
          "biases": D + 6 * n * D,
          "class_table": 2 * num_classes * D,     # class embedding and projection rows
      },
  }


def gan_params(model_cfg, channels: int, num_classes: int, latent_dim: int
               ) -> dict[str, ParamCounts]:
  """Parameters of the generator, the discriminator and both (`total`), exactly as
  `scaling.models.gan.GAN` creates them; `embedding` is the class tables."""
  out = {}
  for name, parts in _gan_parts(model_cfg, channels, num_classes, latent_dim).items():
    non_embedding = parts["per_token"] + parts["per_image"] + parts["biases"]
    out[name] = ParamCounts(parts["class_table"] + non_embedding, parts["class_table"],
                            non_embedding)
  out["total"] = ParamCounts(*(sum(getattr(c, f) for c in out.values())
                               for f in ("total", "embedding", "non_embedding")))
  return out


# Forward passes per training image, in units of one network's forward: the
# discriminator step draws fakes (G forward) and scores reals and fakes with backward
# (3 D forwards' worth each); the generator step runs G and D forward and back, but D's
# weight gradients are not needed (D backward through activations only: 1 forward's worth).
GAN_FORWARDS = {"generator": 1 + 3, "discriminator": 6 + 2}
# R1 (`gan.r1_gamma > 0`) differentiates the discriminator's input gradient on the reals:
# about two more of its forward-and-backward passes per real image.
R1_DISCRIMINATOR_FORWARDS = 6


def gan_flops_per_sample(model_cfg, image_size: int, channels: int, latent_dim: int, *,
                         r1: bool = False) -> float:
  """Training FLOPs per real image (both players' steps), counted as `dit_flops_per_sample`
  counts one network's: 2 per matmul weight per use forward, attention's full L x L square,
  biases, norms and lookups left out; times `GAN_FORWARDS` forwards of each network."""
  parts = _gan_parts(model_cfg, channels, num_classes=0, latent_dim=latent_dim)
  L = (image_size // model_cfg.patch_size) ** 2
  H = model_cfg.n_heads
  K = model_cfg.d_model // H
  attention = 4.0 * model_cfg.n_layers * H * K * L * L
  forwards = dict(GAN_FORWARDS)
  if r1:
    forwards["discriminator"] += R1_DISCRIMINATOR_FORWARDS
  return sum(forwards[name] * (2.0 * (p["per_token"] * L + p["per_image"]) + attention)
             for name, p in parts.items())
