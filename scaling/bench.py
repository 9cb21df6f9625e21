"""`scaling bench train|decode`: speed and memory of a config's model.

`train` times the same jitted step the trainer runs, on random tokens (data loading is
not part of the measurement), after compiling and a few warm-up steps. `decode` times
generation with the KV cache against a naive loop that recomputes the whole prefix for
every new token.
"""

from __future__ import annotations

import copy
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from scaling import files, hardware
from scaling import mesh as mesh_lib
from scaling.errors import UserError
from scaling.numbers import fmt
from scaling.families import family_for, validate
from scaling.generate import decode
from scaling.train.loop import make_train_step
from scaling.train.state import StateSpec


def _memory(compiled) -> dict:
  """Compiler's memory plan per device, and the allocator's peak where it reports one."""
  out = {}
  analysis = compiled.memory_analysis()
  if analysis is not None:
    out["argument_bytes"] = int(analysis.argument_size_in_bytes)
    out["output_bytes"] = int(analysis.output_size_in_bytes)
    out["temp_bytes"] = int(analysis.temp_size_in_bytes)
    # Donated state aliases its output, so arguments + temporaries bound the peak.
    out["planned_peak_bytes"] = out["argument_bytes"] + out["temp_bytes"]
  stats = jax.devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in stats:
    out["device_peak_bytes"] = int(stats["peak_bytes_in_use"])
  return out


def bench_train(cfg, *, steps: int = 10, warmup: int = 2, devices=None,
                rounds: int = 5) -> dict:
  """Times `steps` train steps of `cfg`'s model and returns a JSON-ready dict.

  On CPUs the steps are timed in up to `rounds` rounds with the host's matmul peak
  measured between them, so MFU compares numbers from the same minutes (this machine's
  speed drifts between runs by more than the effects being measured).
  """
  mesh = validate(cfg, devices)
  rules = mesh_lib.complete_rules(cfg.mesh.rules)
  family = family_for(cfg)
  tx = family.optimizer()
  with mesh_lib.activate(mesh, rules):
    spec = StateSpec(family.make_model, tx, mesh, ema=family.ema_decay is not None)
    sharding = mesh_lib.batch_sharding(mesh, rules, ndim=1)  # every leaf: its leading axis
    batch_arrays = jax.device_put(family.synthetic_batch(np.random.default_rng(0)), sharding)
    key = jax.random.key(cfg.seed)
    step_fn = make_train_step(spec, family, tx, sharding)
    t0 = time.perf_counter()
    # Compiled from shapes alone, so `steps=0` plans the memory of a model too big to run.
    # Timed as most steps run: without the norms that only written steps compute.
    record = np.bool_(False)
    compiled = step_fn.lower(spec.abstract, batch_arrays, key, record).compile()
    compile_s = time.perf_counter() - t0
    whole_batch = None  # what the same step takes without gradient accumulation
    if cfg.train.microbatches > 1:
      one = copy.deepcopy(cfg)
      with one.unlocked():
        one.train.microbatches = 1
      whole_batch = make_train_step(spec, family_for(one), tx, sharding).lower(
          spec.abstract, batch_arrays, key, record).compile()
    times, peaks = [], []
    if steps:
      probe = hardware.MatmulProbe() if jax.default_backend() == "cpu" else None
      state = spec.init(cfg.seed)
      for _ in range(warmup):
        state, metrics = compiled(state, batch_arrays, key, record)
      jax.block_until_ready(state)
      for steps_in_round in np.array_split(np.arange(steps), min(rounds, steps)):
        for _ in steps_in_round:
          t0 = time.perf_counter()
          state, metrics = compiled(state, batch_arrays, key, record)
          jax.block_until_ready(state)
          times.append(time.perf_counter() - t0)
        if probe is not None:
          peaks.append(probe.flops(repeats=3))

  unit = family.unit
  shape = ({"seq_len": cfg.data.seq_len} if unit == "token"
           else {"frames": cfg.data.frames, "image_size": cfg.data.canvas}
           if "frames" in cfg.data else {"image_size": cfg.data.image_size})
  result = {
      "name": cfg.get("name", ""),
      "params": family.params().as_dict(),
      "batch_size": cfg.train.batch_size, **shape,
      "dtype": cfg.model.dtype, "attention": cfg.model.attention,
      "scan_layers": cfg.model.scan_layers, "remat": cfg.model.remat,
      "mesh": dict(zip(mesh.axis_names, map(int, mesh.devices.shape))),
      "device_kind": hardware.device_kind(), "device_count": len(mesh.devices.flat),
      "compile_s": compile_s,
      "microbatches": cfg.train.microbatches,
      "memory": _memory(compiled),
  }
  if whole_batch is not None:
    result["memory_whole_batch"] = _memory(whole_batch)
  if not steps:  # Nothing ran, so the allocator's peak would say nothing about the step.
    result["memory"].pop("device_peak_bytes", None)
    return result
  step_s = statistics.median(times)
  per_step = family.units_per_step()
  flops_per_unit = family.flops_per_unit()
  if peaks:
    hardware.record_cpu_peak(max(peaks))  # the training loop's MFU reads the best seen
    peak = statistics.median(peaks)
    peak_source = (f"f32 matmul peak of this host, measured between the timed steps "
                   f"(median of {len(peaks)} rounds)")
  else:
    peak, peak_source = hardware.peak_flops()
  achieved = flops_per_unit * per_step / step_s
  return {
      **result,
      "step_time_s": step_s,
      "step_time_s_all": times,
      f"{unit}s_per_second": per_step / step_s,
      f"flops_per_{unit}": flops_per_unit,
      "model_flops_per_second": achieved,
      "peak_flops_per_second": peak, "peak_source": peak_source,
      "peak_flops_per_second_all": peaks,
      "mfu": achieved / peak,
      "final_loss": float(metrics["loss"]),
  }


def report(result: dict, json_path: str | None = None) -> None:
  """Prints a readable summary (and writes the JSON if asked)."""
  mem = result["memory"]
  peak_mem = mem.get("device_peak_bytes", mem.get("planned_peak_bytes", 0))
  size = f"{result.get('image_size')}x{result.get('image_size')}"
  shape = (f"{result['seq_len']} tokens" if "seq_len" in result
           else f"{result['frames']}x{size} clips" if "frames" in result
           else f"{size} images")
  print(f"{result['name']}: {result['params']['total']:,} params, batch {result['batch_size']}"
        f" x {shape}, {result['dtype']}, mesh {result['mesh']}")
  if "step_time_s" in result:  # absent with --steps 0: compiled, not run
    print(f"  step time      {fmt(result['step_time_s'] * 1e3):>9} ms (median)")
    for unit in ("tokens", "samples"):
      if f"{unit}_per_second" in result:
        print(f"  {unit}/s{' ' * (9 - len(unit))}{fmt(result[f'{unit}_per_second']):>9}")
    print(f"  model FLOP/s   {fmt(result['model_flops_per_second'] / 1e9):>9} G")
    print(f"  MFU            {fmt(100 * result['mfu']):>9} %  (of "
          f"{fmt(result['peak_flops_per_second'] / 1e9)} GFLOP/s, {result['peak_source']})")
  print(f"  peak memory    {fmt(peak_mem / 2 ** 20):>9} MiB per device")
  if "memory_whole_batch" in result:
    whole = result["memory_whole_batch"]
    print(f"  temporaries    {fmt(mem['temp_bytes'] / 2 ** 20):>9} MiB in "
          f"{result['microbatches']} microbatches, {fmt(whole['temp_bytes'] / 2 ** 20)} MiB "
          f"as one batch ({fmt(whole['temp_bytes'] / max(mem['temp_bytes'], 1), 2)}x)")
  print(f"  compile        {fmt(result['compile_s'], 3):>9} s")
  if json_path:
    files.write_json(json_path, result)


def _best_time(fn, repeats: int) -> float:
  jax.block_until_ready(fn())  # compile
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    best = min(best, time.perf_counter() - t0)
  return best


def _naive_generate(model, prompts_BP, new_tokens: int):
  """Greedy decoding without a cache: every step runs the model over the whole buffer."""
  B, P = prompts_BP.shape
  buffer_BT = jnp.zeros((B, P + new_tokens), jnp.int32).at[:, :P].set(prompts_BP)

  def step(i, buffer_BT):
    logits_BV = jax.lax.dynamic_index_in_dim(model(buffer_BT), P - 1 + i, 1, keepdims=False)
    return jax.lax.dynamic_update_index_in_dim(buffer_BT, logits_BV.argmax(-1), P + i, 1)

  return jax.lax.fori_loop(0, new_tokens, step, buffer_BT)


def bench_decode(cfg, *, batch: int, prompt_len: int, new_tokens: int,
                 repeats: int = 3) -> dict:
  """Prefill and per-token decode speed, with the KV cache and with naive recompute."""
  family = family_for(cfg)
  family.check()
  model = family.make_model()
  if not hasattr(model, "init_cache"):
    raise UserError(f"bench decode times autoregressive decoding with a KV cache; a "
                    f"{cfg.model.kind!r} model has none (use bench train)")
  rng = np.random.default_rng(0)
  prompts = jnp.asarray(rng.integers(4, cfg.data.vocab_size, (batch, prompt_len)), jnp.int32)
  lengths = jnp.full((batch,), prompt_len, jnp.int32)

  @jax.jit
  def prefill(model, prompts):
    cache = model.init_cache(batch, prompt_len + new_tokens)
    positions = jnp.broadcast_to(jnp.arange(prompt_len), prompts.shape)
    return model(prompts, positions, cache=cache)

  prefill_s = _best_time(lambda: prefill(model, prompts), repeats)
  cached_s = _best_time(lambda: decode.generate(model, prompts, lengths,
                                                max_new_tokens=new_tokens).tokens, repeats)
  naive = jax.jit(_naive_generate, static_argnums=2)
  naive_s = _best_time(lambda: naive(model, prompts, new_tokens), repeats)
  decode_s = max(cached_s - prefill_s, 1e-9)
  return {
      "name": cfg.get("name", ""), "batch": batch, "prompt_len": prompt_len,
      "new_tokens": new_tokens, "device_kind": hardware.device_kind(),
      "prefill_tokens_per_second": batch * prompt_len / prefill_s,
      "cached_decode_tokens_per_second": batch * new_tokens / decode_s,
      "cached_ms_per_token": 1e3 * decode_s / new_tokens,
      "naive_decode_tokens_per_second": batch * new_tokens / naive_s,
      "naive_ms_per_token": 1e3 * naive_s / new_tokens,
      "speedup": naive_s / decode_s,
  }


def report_decode(results: list[dict], json_path: str | None = None) -> None:
  print(f"{results[0]['name']}: batch {results[0]['batch']}, prompt {results[0]['prompt_len']} tokens, greedy")
  print(f"  {'new tokens':>10} {'prefill tok/s':>14} {'cache tok/s':>12} {'cache ms/tok':>13}"
        f" {'naive tok/s':>12} {'naive ms/tok':>13} {'speedup':>8}")
  for r in results:
    print(f"  {r['new_tokens']:>10} {fmt(r['prefill_tokens_per_second']):>14}"
          f" {fmt(r['cached_decode_tokens_per_second']):>12} {fmt(r['cached_ms_per_token']):>13}"
          f" {fmt(r['naive_decode_tokens_per_second']):>12} {fmt(r['naive_ms_per_token']):>13}"
          f" {fmt(r['speedup'], 3):>7}x")
  if json_path:
    files.write_json(json_path, results)
