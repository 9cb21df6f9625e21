"""The toolkit's train step against the same transformer written as bare jitted JAX.

    python tools/bench_reference.py --config=configs/lm/arithmetic.py:size=s5 [--config.x=y ...]

Both steps use the same shapes, optimizer (optax AdamW with clipping) and dtype, run on one
device in the same process, and are timed in alternating rounds; the ratio of medians
shows what the toolkit's NNX modules, sharding annotations and state handling cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from scaling import bench, config as config_lib, optim
from scaling.models import counting
from scaling.models.backend import HEAD_MAJOR_MIN_HEAD_DIM


def init(key, V, D, L, H, F):
  k = jax.random.split(key, 6)
  n = lambda key, shape, fan_in: jax.random.normal(key, shape) * fan_in ** -0.5
  K = D // H
  return {
      "embed": n(k[0], (V, D), D),
      "q": n(k[1], (L, D, H, K), D), "k": n(k[2], (L, D, H, K), D),
      "v": n(k[3], (L, D, H, K), D), "o": n(k[4], (L, H, K, D), D) * (2 * L) ** -0.5,
      "wi": n(k[5], (L, D, F), D), "wo": n(k[5], (L, F, D), F) * (2 * L) ** -0.5,
      "norm1": jnp.ones((L, D)), "norm2": jnp.ones((L, D)), "final": jnp.ones((D,)),
  }


def rms(x, scale):
  return x * jax.lax.rsqrt(jnp.mean(x * x, -1, keepdims=True) + 1e-6) * scale


def rope(x):
  """Rotary embedding at positions 0..T-1, its sin and cos tables computed on the host (as
  the toolkit does: XLA's CPU backend recomputes in-graph ones for every element)."""
  half = x.shape[-1] // 2
  angle = np.arange(x.shape[1])[:, None] * 10_000.0 ** (-np.arange(half) / half)
  sin = jnp.asarray(np.sin(angle)[None, :, None], jnp.float32)
  cos = jnp.asarray(np.cos(angle)[None, :, None], jnp.float32)
  x1, x2 = x[..., :half], x[..., half:]
  return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


def attention(q, k, v):
  """Causal softmax attention as two einsums, as the toolkit computes it on CPU (heads
  before positions from its HEAD_MAJOR_MIN_HEAD_DIM; scaling/models/backend.py)."""
  L, K = q.shape[1], q.shape[-1]
  causal = jnp.tril(jnp.ones((L, L), bool))
  if K >= HEAD_MAJOR_MIN_HEAD_DIM:
    q, k, v = (jnp.swapaxes(x, 1, 2) for x in (q, k, v))
    s = jnp.einsum("bhlk,bhsk->bhls", q, k) * K ** -0.5
    s = jnp.where(causal, s, jnp.finfo(jnp.float32).min)
    return jnp.swapaxes(jnp.einsum("bhls,bhsk->bhlk", jax.nn.softmax(s, -1), v), 1, 2)
  s = jnp.einsum("blhk,bshk->bhls", q, k) * K ** -0.5
  s = jnp.where(causal, s, jnp.finfo(jnp.float32).min)
  return jnp.einsum("bhls,bshk->blhk", jax.nn.softmax(s, -1), v)


def forward(p, tokens):
  """Dense layers on [B*L, D] rows, as the toolkit runs them on CPU (XLA's CPU backend is
  slow on weight gradients that contract over both batch and length)."""
  L = p["q"].shape[0]
  B, T = tokens.shape
  x = p["embed"][tokens].reshape(B * T, -1)
  heads = lambda a: a.reshape(B, T, *a.shape[1:])
  for i in range(L):
    h = rms(x, p["norm1"][i])
    q = rope(heads(jnp.einsum("nd,dhk->nhk", h, p["q"][i])))
    k = rope(heads(jnp.einsum("nd,dhk->nhk", h, p["k"][i])))
    v = heads(jnp.einsum("nd,dhk->nhk", h, p["v"][i]))
    a = attention(q, k, v).reshape(B * T, *q.shape[2:])
    x = x + jnp.einsum("nhk,hkd->nd", a, p["o"][i])
    x = x + jax.nn.gelu(rms(x, p["norm2"][i]) @ p["wi"][i]) @ p["wo"][i]
  return (rms(x, p["final"]) @ p["embed"].T).reshape(B, T, -1)


def make_step(tx):
  def loss(p, batch):
    logits = forward(p, batch["inputs"])
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"])
    return (nll * batch["loss_mask"]).sum() / batch["loss_mask"].sum()

  def step(p, opt, batch):
    value, grads = jax.value_and_grad(loss)(p, batch)
    updates, opt = tx.update(grads, opt, p)
    return optax.apply_updates(p, updates), opt, value

  return jax.jit(step, donate_argnums=(0, 1))


def time_reference(cfg, steps: int) -> list[float]:
  m, V = cfg.model, cfg.data.vocab_size
  p = init(jax.random.key(0), V, m.d_model, m.n_layers, m.n_heads, m.d_ff)
  tx = optim.optimizer(cfg.train)
  opt = tx.init(p)
  rng = np.random.default_rng(0)
  tokens = rng.integers(4, V, (cfg.train.batch_size, cfg.data.seq_len + 1)).astype(np.int32)
  batch = {"inputs": jnp.asarray(tokens[:, :-1]), "targets": jnp.asarray(tokens[:, 1:]),
           "loss_mask": jnp.ones((cfg.train.batch_size, cfg.data.seq_len))}
  step = make_step(tx)
  for _ in range(3):
    p, opt, value = step(p, opt, batch)
  jax.block_until_ready(p)
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    p, opt, value = step(p, opt, batch)
    jax.block_until_ready(p)
    times.append(time.perf_counter() - t0)
  return times


def main(argv=None):
  from scaling import host_memory
  from scaling.cli import _split_overrides
  host_memory.reuse_freed_memory()  # as the `scaling` command does, for both steps
  rest, overrides = _split_overrides(list(sys.argv[1:] if argv is None else argv))
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", required=True)
  parser.add_argument("--steps", type=int, default=10, help="timed steps per round")
  parser.add_argument("--rounds", type=int, default=5)
  args = parser.parse_args(rest)
  cfg = config_lib.load(args.config)
  config_lib.apply_overrides(cfg, [*overrides, "mesh.data=1", "mesh.fsdp=1", "mesh.tensor=1"])
  if cfg.model.mlp != "gelu" or not cfg.model.tie_embeddings or cfg.model.n_kv_heads != cfg.model.n_heads:
    sys.exit("the reference implements the gelu, tied, multi-head configuration only")
  ours, reference = [], []
  for _ in range(args.rounds):
    ours.append(statistics.median(
        bench.bench_train(cfg, steps=args.steps, devices=jax.devices()[:1])["step_time_s_all"]))
    reference.append(statistics.median(time_reference(cfg, args.steps)))
  flops = counting.lm_flops_per_token(cfg.model, cfg.data.vocab_size, cfg.data.seq_len)
  tokens = cfg.train.batch_size * cfg.data.seq_len
  params = counting.lm_params(cfg.model, cfg.data.vocab_size).total
  ours_s, ref_s = statistics.median(ours), statistics.median(reference)
  print(f"{params:,} params, batch {cfg.train.batch_size} x {cfg.data.seq_len}, {cfg.model.dtype}")
  for name, t in (("toolkit", ours_s), ("bare JAX", ref_s)):
    print(f"  {name:<9} {t * 1e3:8.2f} ms/step  {flops * tokens / t / 1e9:7.1f} GFLOP/s (model)"
          f"  {6 * params * tokens / t / 1e9:7.1f} GFLOP/s (6 N tokens)")
  print(f"  ratio toolkit / bare JAX: {ours_s / ref_s:.3f} (median of {args.rounds} rounds)")


if __name__ == "__main__":
  main()
