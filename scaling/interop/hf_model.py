"""A language model's weights and config as a Hugging Face causal LM.

The toolkit's block is Llama's: pre-norm RMSNorm, rotary queries and keys in rotate-half
form (HF's `rotate_half` pairs the same dimensions, so no permutation), grouped-query
attention without biases. A SwiGLU model is a `LlamaForCausalLM`; a GELU model is an
`ArceeForCausalLM`, Llama's block with an ungated MLP, with HF's tanh GELU (the toolkit's
`jax.nn.gelu`). muP's two multipliers are folded into weights: the attention scores'
1/head_dim becomes HF's 1/sqrt(head_dim) on queries scaled by 1/sqrt(head_dim), and the
readout multiplier scales the (untied) output head. The function is the same, and every
harness that reads Llama reads it; training it further in HF would not be muP.
"""

from __future__ import annotations

import numpy as np

from scaling.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from scaling.errors import UserError
from scaling.models import layers

ARCHITECTURES = {"swiglu": "LlamaForCausalLM", "gelu": "ArceeForCausalLM"}


def refusal(model_cfg) -> str | None:
  """Why a language model's config has no exact HF counterpart (naming the field), or None."""
  if model_cfg.mlp not in ARCHITECTURES:
    return (f"model.mlp={model_cfg.mlp!r} has no Hugging Face counterpart (exportable: "
            f"{', '.join(ARCHITECTURES)})")
  if model_cfg.rope_base is None:
    return "model.rope_base=None (no position encoding) has no Hugging Face counterpart"
  return None


def hf_config(cfg, vocab_size: int):
  """The `transformers` config of the run's model (its class decides config.json's form)."""
  import transformers
  m = cfg.model
  why = refusal(m)
  if why:
    raise UserError(why)
  architecture = ARCHITECTURES[m.mlp]
  config_class = getattr(transformers, architecture.replace("ForCausalLM", "Config"))
  return config_class(
      architectures=[architecture], vocab_size=vocab_size, hidden_size=m.d_model,
      intermediate_size=m.d_ff, num_hidden_layers=m.n_layers, num_attention_heads=m.n_heads,
      num_key_value_heads=m.n_kv_heads, head_dim=m.d_model // m.n_heads,
      hidden_act="silu" if m.mlp == "swiglu" else "gelu_pytorch_tanh",
      max_position_embeddings=cfg.data.seq_len, rms_norm_eps=m.norm_eps,
      rope_parameters={"rope_type": "default", "rope_theta": float(m.rope_base)},
      tie_word_embeddings=bool(m.tie_embeddings), attention_bias=False, mlp_bias=False,
      bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID, dtype="float32")


def hf_tensors(model, model_cfg) -> dict[str, np.ndarray]:
  """The model's parameters under HF's names, as float32 arrays (a Linear's weight is
  [out, in])."""
  value = lambda p: np.asarray(p[...], np.float32)
  blocks = model.blocks
  D, H, K = model_cfg.d_model, model_cfg.n_heads, model_cfg.d_model // model_cfg.n_heads
  G = model_cfg.n_kv_heads
  query_scale = layers.score_scale(model_cfg) / K ** -0.5  # 1, or 1/sqrt(K) under muP
  q, k, v, o = (value(p) for p in (blocks.attn.q_DHK, blocks.attn.k_DHK, blocks.attn.v_DHK,
                                   blocks.attn.o_HKD))
  tensors = {"model.embed_tokens.weight": value(model.embed_VD),
             "model.norm.weight": value(model.final_norm.scale)}
  for i in range(model_cfg.n_layers):
    prefix = f"model.layers.{i}"
    tensors.update({
        f"{prefix}.input_layernorm.weight": value(blocks.attn_norm.scale)[i],
        f"{prefix}.self_attn.q_proj.weight": (q[i].reshape(D, H * K) * query_scale).T,
        f"{prefix}.self_attn.k_proj.weight": k[i].reshape(D, G * K).T,
        f"{prefix}.self_attn.v_proj.weight": v[i].reshape(D, G * K).T,
        f"{prefix}.self_attn.o_proj.weight": o[i].reshape(H * K, D).T,
        f"{prefix}.post_attention_layernorm.weight": value(blocks.mlp_norm.scale)[i],
        f"{prefix}.mlp.up_proj.weight": value(blocks.mlp.wi_DF)[i].T,
        f"{prefix}.mlp.down_proj.weight": value(blocks.mlp.wo_FD)[i].T,
    })
    if model_cfg.mlp == "swiglu":
      tensors[f"{prefix}.mlp.gate_proj.weight"] = value(blocks.mlp.wg_DF)[i].T
  if not model_cfg.tie_embeddings:
    tensors["lm_head.weight"] = value(model.head_DV).T * layers.readout_multiplier(model_cfg)
  return {name: np.ascontiguousarray(t) for name, t in tensors.items()}
