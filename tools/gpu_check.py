"""Helpers of tools/gpu_check.sh: check the install, add bandwidth shares, print the summary.

    python tools/gpu_check.py preflight [--dry-run] --json WORK/json/device.json
    python tools/gpu_check.py decode-bandwidth --json FILE --device DEVICE_JSON --config SPEC [--config.x=y ...]
    python tools/gpu_check.py sweep-summary --dir SWEEP_DIR --json FILE
    python tools/gpu_check.py summary --work WORK --out OUTDIR

`preflight` says in one line what is missing (a package the project needs, a GPU) before
anything compiles. `decode-bandwidth` adds to each row of a `scaling bench decode` JSON the
bytes one decode step must read (weights and the live KV cache) and the share of the
memory-bandwidth bound that the measured tokens/s reach.
"""

from __future__ import annotations

import argparse
import ast
import glob
import json
import os
import re
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# HBM bandwidth per device, bytes/s (vendor datasheets). The longest matching name wins, so
# "H100 PCIe" is not read as the SXM part and "GH200" not as the H200.
HBM_BANDWIDTH = {
    "H100 PCIe": 2.0e12,
    "H100 NVL": 3.9e12,
    "H100": 3.35e12,       # SXM5, "NVIDIA H100 80GB HBM3"
    "GH200": 4.0e12,       # the 96 GB HBM3 part (the 144 GB HBM3e one has 4.9 TB/s)
    "H200": 4.8e12,
    "B200": 8.0e12,
    "A100-SXM4-80GB": 2.039e12,
    "A100 80GB PCIe": 1.935e12,
    "A100": 1.555e12,      # 40 GB parts
    "L40S": 0.864e12,
    "L40": 0.864e12,
    "L4": 0.3e12,
}


def _say(line: str) -> None:
  print(f"gpu_check: {line}", flush=True)


# --- preflight ------------------------------------------------------------------------

def requirements() -> list[str]:
  """install_requires of setup.py, read without running it."""
  with open(os.path.join(REPO, "setup.py")) as f:
    tree = ast.parse(f.read())
  for node in ast.walk(tree):
    if isinstance(node, ast.keyword) and node.arg == "install_requires":
      return [ast.literal_eval(e) for e in node.value.elts]
  return []


def missing_packages() -> tuple[list[str], list[str]]:
  """What the project needs that this Python lacks (or has too old), and what those
  packages need in turn: each as 'name' or 'name (version; needs spec)'."""
  import importlib.metadata as metadata
  try:
    from packaging.requirements import Requirement
  except ImportError:  # then only the project's own requirements, by name
    return [n for n in (re.split(r"[<>=!~\[; ]", t, maxsplit=1)[0] for t in requirements())
            if not _installed(metadata, n)], []
  direct, deeper, seen = [], [], set()
  todo = [(Requirement(t), direct) for t in requirements()]
  while todo:
    req, out = todo.pop(0)
    key = re.sub(r"[-_.]+", "-", req.name).lower()
    if key in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
      continue
    seen.add(key)
    try:
      dist = metadata.distribution(req.name)
    except metadata.PackageNotFoundError:
      out.append(req.name)
      continue
    if req.specifier and not req.specifier.contains(dist.version, prereleases=True):
      out.append(f"{req.name} ({dist.version}; needs {req.specifier})")
    for text in dist.requires or []:
      try:
        todo.append((Requirement(text), deeper))
      except ValueError:
        pass
  return direct, deeper


def _installed(metadata, name: str) -> bool:
  try:
    metadata.version(name)
    return True
  except metadata.PackageNotFoundError:
    return False


# What the parts import: a missing module that no requirement names shows here.
MODULES = ("scaling.bench", "scaling.train.loop", "scaling.data.pipeline",
           "scaling.data.builders", "scaling.evals.kinds", "scaling.sweep.run",
           "scaling.analysis.analyze")


def import_error() -> str | None:
  import importlib
  for name in MODULES:
    try:
      importlib.import_module(name)
    except ImportError as e:
      return f"importing {name} failed: {e}"
  return None


def _copy_bandwidth(jax, jnp, nbytes: int) -> float:
  """Best bytes/s of an elementwise pass over `nbytes` (counting bytes read and written)."""
  x = jnp.ones((nbytes // 4,), jnp.float32)  # float32: CPUs compute bfloat16 slowly
  f = jax.jit(lambda x: x * 2)
  f(x).block_until_ready()
  best = float("inf")
  for _ in range(5):
    t0 = time.perf_counter()
    f(x).block_until_ready()
    best = min(best, time.perf_counter() - t0)
  return 2 * x.nbytes / best


def preflight(args) -> int:
  if sys.version_info < (3, 11):
    _say(f"needs Python 3.11 or later, this is {sys.version.split()[0]} ({sys.executable})")
    return 3
  direct, deeper = missing_packages()
  error = None if direct else import_error()
  if direct or error:
    what = (f"missing Python packages for {sys.executable}: {', '.join(direct)}" if direct
            else error)
    if deeper:
      what += f"; and what installed packages need: {', '.join(deeper)}"
    _say(f"{what} -- install them (pip install -e '.[cuda]'), or offline carry their "
         "wheels and pip install --no-deps them")
    return 3
  if deeper:  # the toolkit imports: perhaps unused parts of its dependencies
    _say(f"warning: installed packages declare these missing: {', '.join(deeper)}")
  import jax
  import jax.numpy as jnp
  import jaxlib
  devices = jax.devices()
  print(f"jax.devices(): {devices}", flush=True)
  backend = jax.default_backend()
  kind = devices[0].device_kind
  print(f"jax {jax.__version__}, jaxlib {jaxlib.__version__}, backend {backend}, "
        f"{len(devices)} x {kind}", flush=True)
  if not args.dry_run and backend != "gpu":
    _say(f"JAX sees no GPU (backend {backend}: {devices}); install JAX's CUDA build "
         "(pip install -e '.[cuda]') and check nvidia-smi, or run with --dry-run")
    return 3
  measured = _copy_bandwidth(jax, jnp, (1 << 30) if backend == "gpu" else (1 << 27))
  datasheet = next((bw for name, bw in sorted(HBM_BANDWIDTH.items(), key=lambda kv: -len(kv[0]))
                    if backend == "gpu" and name.lower() in kind.lower()), None)
  info = {
      "device_kind": kind, "device_count": len(devices), "backend": backend,
      "devices": [str(d) for d in devices],
      "jax": jax.__version__, "jaxlib": jaxlib.__version__, "python": sys.version.split()[0],
      "memory_bandwidth_bytes_per_second": datasheet or measured,
      "memory_bandwidth_source": ("datasheet" if datasheet else
                                  "measured: elementwise pass, bytes read + written"),
      "measured_copy_bytes_per_second": measured,
      "dry_run": bool(args.dry_run),
  }
  print(f"memory bandwidth {info['memory_bandwidth_bytes_per_second'] / 1e12:.3g} TB/s "
        f"({info['memory_bandwidth_source']}); measured elementwise pass "
        f"{measured / 1e12:.3g} TB/s", flush=True)
  _write(args.json, info)
  return 0


def _write(path: str, data) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path + ".tmp", "w") as f:
    json.dump(data, f, indent=1)
  os.replace(path + ".tmp", path)


def _read(path: str, default=None):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return default


# --- decode bandwidth -----------------------------------------------------------------

def decode_bandwidth(args, overrides: list[str]) -> int:
  """Adds per-step bytes, the bandwidth bound and the share reached to each decode row."""
  os.environ.setdefault("JAX_PLATFORMS", "cpu")  # counts only: leave the GPU alone
  import numpy as np
  from scaling import config as config_lib
  from scaling.families import family_for
  cfg = config_lib.load(args.config)
  config_lib.apply_overrides(cfg, overrides)
  m = cfg.model
  counts = family_for(cfg).params()
  item = np.dtype(m.dtype).itemsize  # the compute dtype: what the step needs at least
  # Every decode step reads each matmul weight once (the unembedding included, the
  # embedding lookup only B rows) and the keys and values cached so far.
  matmul_params = counts.non_embedding + cfg.data.vocab_size * m.d_model
  kv_per_token = 2 * m.n_layers * m.n_kv_heads * (m.d_model // m.n_heads) * item
  device = _read(args.device, {})
  bandwidth = device.get("memory_bandwidth_bytes_per_second")
  rows = _read(args.json)
  if not bandwidth or not isinstance(rows, list):
    _say(f"cannot compute bandwidth shares: missing {args.device if not bandwidth else args.json}")
    return 1
  for r in rows:
    B, P, N = r["batch"], r["prompt_len"], r["new_tokens"]
    live = P + (N + 1) / 2  # mean cache length over the decode steps
    weights, weights_f32 = matmul_params * item, matmul_params * 4
    kv = B * live * kv_per_token
    bound = B * bandwidth / (weights + kv)
    r.update({
        "weight_bytes_per_step": weights, "kv_bytes_per_step": kv,
        "kv_bytes_allocated": B * (P + N) * kv_per_token,
        "bytes_per_step": weights + kv,
        "memory_bandwidth_bytes_per_second": bandwidth,
        "memory_bandwidth_source": device.get("memory_bandwidth_source"),
        "bound_tokens_per_second": bound,
        "bandwidth_share": r["cached_decode_tokens_per_second"] / bound,
        # Parameters are stored in float32 and cast per use: a step that reads them so
        # reaches at most this share of the bound above.
        "bandwidth_share_f32_weights": r["cached_decode_tokens_per_second"]
                                       * (weights_f32 + kv) / (B * bandwidth),
        "params": counts.as_dict(), "attention": m.attention, "dtype": m.dtype,
    })
    print(f"decode batch {B}: {r['cached_decode_tokens_per_second']:,.0f} tokens/s, "
          f"{(weights + kv) / 1e9:.3g} GB per step, bound {bound:,.0f} tokens/s at "
          f"{bandwidth / 1e12:.3g} TB/s: {100 * r['bandwidth_share']:.1f}% "
          f"({100 * r['bandwidth_share_f32_weights']:.1f}% counting float32 weights)")
  _write(args.json, rows)
  return 0


# --- attention ------------------------------------------------------------------------

def _rel_diff(a, b) -> float:
  """max |a - b| / max |b|, in float32."""
  import jax.numpy as jnp
  a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
  return float(jnp.abs(a - b).max() / jnp.maximum(jnp.abs(b).max(), 1e-30))


# Batch, length, heads, head dim of the 1b preset's training step (16 x 1024 tokens); the
# decode step's cache length (64 prompt + 64 new tokens).
ATTENTION_SHAPES = {"gpu": (16, 1024, 16, 128, 128), "cpu": (2, 64, 4, 16, 16)}


def attention(args) -> int:
  """Times jax.nn.dot_product_attention as the models call it, fwd + bwd: causal (what
  `bench train` runs on its unpacked random batch) and with the [B, 1, L, L] mask of packed
  rows (what training on text runs: document boundaries), cuDNN against XLA, and checks
  that both give the same numbers; also one decode step's shape (one query, a masked cache)."""
  import statistics
  import jax
  import jax.numpy as jnp
  import numpy as np
  gpu = jax.default_backend() == "gpu"
  B, L, H, K, S = ATTENTION_SHAPES["gpu" if gpu else "cpu"]
  dtype = jnp.bfloat16 if gpu else jnp.float32
  rng = np.random.default_rng(0)
  q, k, v = (jnp.asarray(rng.standard_normal((B, L, H, K)), dtype) for _ in range(3))
  # Documents of 1 to L/2 tokens packed into each row, as scaling.data.packing lays them.
  segments = np.cumsum(rng.random((B, L)) < 4 / L, axis=1)
  same = segments[:, :, None] == segments[:, None, :]
  packed = jnp.asarray(same & np.tril(np.ones((L, L), bool)))[:, None]
  rows, reference = [], {}
  for mask_name, mask in (("causal", None), ("packed", packed)):
    for impl in (("cudnn", "xla") if gpu else ("xla",)):
      def loss(q, k, v, mask=mask, impl=impl):
        out = jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=mask is None,
                                           implementation=impl)
        return out.astype(jnp.float32).sum(), out
      step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))
      row = {"what": "train", "mask": mask_name, "implementation": impl,
             "shape_BLHK": [B, L, H, K], "dtype": jnp.dtype(dtype).name}
      try:
        (_, out), grads = step(q, k, v)
        jax.block_until_ready(grads)
        times = []
        for _ in range(10):
          t0 = time.perf_counter()
          jax.block_until_ready(step(q, k, v))
          times.append(time.perf_counter() - t0)
        row["ms"] = 1e3 * statistics.median(times)
        row["_out"] = (out, grads)
        if impl == "xla":
          reference[mask_name] = (out, grads)
      except Exception as e:  # reported, not raised: the other cases still run
        row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
      rows.append(row)
  for row in rows:
    got, ref = row.pop("_out", None), reference.get(row["mask"])
    if got is not None and ref is not None and row["implementation"] != "xla":
      row["max_rel_diff_vs_xla"] = max(_rel_diff(a, b) for a, b in zip(jax.tree.leaves(got),
                                                                      jax.tree.leaves(ref)))
  # One decode step at batch 64 of the 1b model: one query over a 128-slot cache, masked.
  qd = jnp.asarray(rng.standard_normal((64, 1, H, K)), dtype)
  kd, vd = (jnp.asarray(rng.standard_normal((64, S, H, K)), dtype) for _ in range(2))
  maskd = jnp.asarray(np.arange(S)[None, None, None, :] <= S // 2).repeat(64, 0)
  outs = {}
  for impl in (("cudnn", "xla") if gpu else ("xla",)):
    row = {"what": "decode", "mask": "cache", "implementation": impl,
           "shape_BLHK": [64, 1, H, K], "cache_len": S, "dtype": jnp.dtype(dtype).name}
    f = jax.jit(lambda q, k, v, impl=impl: jax.nn.dot_product_attention(
        q, k, v, mask=maskd, implementation=impl))
    try:
      outs[impl] = jax.block_until_ready(f(qd, kd, vd))
      t0 = time.perf_counter()
      for _ in range(20):
        jax.block_until_ready(f(qd, kd, vd))
      row["ms"] = 1e3 * (time.perf_counter() - t0) / 20
    except Exception as e:
      row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    rows.append(row)
  if "cudnn" in outs and "xla" in outs:
    rows[-2]["max_rel_diff_vs_xla"] = _rel_diff(outs["cudnn"], outs["xla"])
  for r in rows:
    print(f"attention {r['what']:<6} {r['mask']:<6} {r['implementation']:<5} "
          + (f"{r['ms']:8.3f} ms" if "ms" in r else f"FAILED {r['error']}")
          + (f"  max |diff| / max |xla| {r['max_rel_diff_vs_xla']:.3g} (outputs and gradients)"
             if "max_rel_diff_vs_xla" in r else ""))
  _write(args.json, rows)
  # A wrong result fails the part; a cuDNN case that refuses a shape is reported only.
  bad = [r for r in rows if r.get("max_rel_diff_vs_xla", 0) > 0.05]
  return 1 if bad or any("error" in r and r["implementation"] == "xla" for r in rows) else 0


def _read_jsonl(path: str) -> list[dict]:
  """The records of a JSON-lines file; none when it does not exist."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


# --- sweep ----------------------------------------------------------------------------

def sweep_summary(args) -> int:
  d = args.dir
  rows = _read_jsonl(os.path.join(d, "results.jsonl"))
  trials = [{k: r.get(k) for k in ("size", "seed", "status", "params", "final_eval_loss",
                                    "wall_time_s")}
            | {"exact_match": (r.get("metrics", {}).get("arithmetic/+3d/exact_match") or [None])[0]}
            for r in rows]
  figures = sorted(os.path.basename(p) for p in glob.glob(os.path.join(d, "figures", "*.png")))
  out = {
      "dir": os.path.abspath(d),
      "trials": trials,
      "completed": sum(t["status"] == "completed" for t in trials),
      "analysis": os.path.exists(os.path.join(d, "analysis.json")),
      "analysis_keys": sorted(_read(os.path.join(d, "analysis.json"), {}) or {}),
      "figures": figures,
      "report": os.path.exists(os.path.join(d, "report.html")),
      "status": _read(os.path.join(d, "status.json"), {}),
  }
  _write(args.json, out)
  ok = out["completed"] == len(trials) > 0 and out["analysis"] and figures and out["report"]
  print(f"sweep: {out['completed']}/{len(trials)} trials completed, analysis.json "
        f"{'written' if out['analysis'] else 'MISSING'}, {len(figures)} figures, report.html "
        f"{'written' if out['report'] else 'MISSING'}")
  return 0 if ok else 1


# --- summary --------------------------------------------------------------------------

def _error_line(log: str) -> str:
  """The line of a part's log that says best why it failed."""
  try:
    with open(log, errors="replace") as f:
      lines = [l.strip() for l in f.read().replace("\r", "\n").splitlines() if l.strip()]
  except OSError:
    return ""
  for pattern in (r"^(gpu_check: |error: )", r"RESOURCE_EXHAUSTED|[Oo]ut of memory",
                  r"^[\w.]+(Error|Exception)\b"):
    hits = [l for l in lines if re.search(pattern, l)]
    if hits:
      return hits[-1][:200]
  return lines[-1][:200] if lines else ""


def _n(x: float) -> str:
  for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
    if x >= scale:
      return f"{x / scale:.3g}{unit}"
  return f"{x:g}"


def summary(args) -> int:
  work = args.work
  parts = _read_jsonl(os.path.join(work, "parts.jsonl"))
  device = _read(os.path.join(work, "json", "device.json"), {})
  results = {"device": device, "parts": parts, "train": {}, "decode": {}, "attention": None,
             "sweep": None}
  lines = []
  if device:
    lines.append(f"device: {device['device_count']} x {device['device_kind']} "
                 f"({device['backend']}, jax {device['jax']}), memory bandwidth "
                 f"{device['memory_bandwidth_bytes_per_second'] / 1e12:.3g} TB/s "
                 f"({device['memory_bandwidth_source']})")
  lines += ["", f"{'train':<26} {'attention':<9} {'dtype':<9} {'params':>7} {'batch':>11} "
            f"{'step ms':>9} {'per second':>18} {'MFU':>7} {'peak GiB':>9}"]
  for p in parts:
    r = _read(p.get("json", ""))
    if not p["part"].startswith("train") or not isinstance(r, dict) or "step_time_s" not in r:
      continue
    results["train"][p["part"]] = r
    unit = "tokens" if "tokens_per_second" in r else "samples"
    shape = f"x{r['seq_len']}" if "seq_len" in r else f"x{r['image_size']}px"
    label = "tokens" if unit == "tokens" else "images"
    mem = r["memory"].get("device_peak_bytes", r["memory"].get("planned_peak_bytes", 0))
    lines.append(f"{r['name']:<26} {r['attention']:<9} {r['dtype']:<9} "
                 f"{_n(r['params']['total']):>7} {str(r['batch_size']) + shape:>11} "
                 f"{1e3 * r['step_time_s']:>9.2f} "
                 f"{r[f'{unit}_per_second']:>11,.0f} {label} {100 * r['mfu']:>6.1f}% "
                 f"{mem / 2 ** 30:>9.2f}")
  lines += ["", f"{'decode':<26} {'attention':<9} {'batch':>5} {'prompt+new':>10} "
            f"{'tokens/s':>10} {'ms/token':>9} {'GB/step':>8} {'bound/s':>10} {'share':>7} "
            f"{'f32 w.':>7}"]
  for p in parts:
    rows = _read(p.get("json", ""))
    if not p["part"].startswith("decode") or not isinstance(rows, list):
      continue
    results["decode"][p["part"]] = rows
    for r in rows:
      share = r.get("bandwidth_share")
      lines.append(
          f"{r['name']:<26} {r.get('attention', '?'):<9} {r['batch']:>5} "
          f"{'%d+%d' % (r['prompt_len'], r['new_tokens']):>10} "
          f"{r['cached_decode_tokens_per_second']:>10,.0f} {r['cached_ms_per_token']:>9.3f} "
          + (f"{r['bytes_per_step'] / 1e9:>8.3f} {r['bound_tokens_per_second']:>10,.0f} "
             f"{100 * share:>6.1f}% {100 * r['bandwidth_share_f32_weights']:>6.1f}%"
             if share is not None else "  (no bandwidth share)"))
  attention = _read(os.path.join(work, "json", "attention.json"))
  if attention:
    results["attention"] = attention
    lines += ["", f"{'attention (fwd+bwd)':<26} {'mask':<7} {'shape BxLxHxK':>16} {'ms':>9} "
              f"{'vs xla':>9}"]
    for r in attention:
      lines.append(
          f"{r['what'] + ' ' + r['implementation']:<26} {r['mask']:<7} "
          f"{'x'.join(map(str, r['shape_BLHK'])):>16} "
          + (f"{r['ms']:>9.3f} " if "ms" in r else f"{'FAILED':>9} ")
          + (f"{r['max_rel_diff_vs_xla']:>9.2g}" if "max_rel_diff_vs_xla" in r else f"{'':>9}")
          + (f"  {r['error']}" if "error" in r else ""))
  sweep = _read(os.path.join(work, "json", "sweep.json"))
  if sweep:
    results["sweep"] = sweep
    trials = "; ".join(f"{t['size']} {t['params'] or 0:,} params {t['status']}"
                       + (f", exact match {t['exact_match']:.2f}"
                          if t.get("exact_match") is not None else "")
                       for t in sweep["trials"])
    lines += ["", f"sweep: {sweep['completed']}/{len(sweep['trials'])} trials completed "
              f"({trials}); analysis.json {'yes' if sweep['analysis'] else 'NO'}, "
              f"{len(sweep['figures'])} figures, report.html {'yes' if sweep['report'] else 'NO'}"]
  counts = {s: sum(p["status"] == s for p in parts) for s in ("ok", "failed", "timeout", "skipped")}
  lines += ["", f"parts: {counts['ok']} ok, {counts['failed']} failed, {counts['timeout']} "
            f"timed out, {counts['skipped']} skipped; {sum(p['seconds'] for p in parts)} s"]
  for p in parts:
    why = "" if p["status"] == "ok" else _error_line(p.get("log", ""))
    if p["status"] == "skipped":
      why = p.get("why", "")
    p["error"] = why
    lines.append(f"  {p['part']:<24} {p['status']:<8} {p['seconds']:>5} s"
                 + (f"  {why}" if why else ""))
  text = "\n".join(lines)
  print(text)
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "summary.txt"), "w") as f:
    f.write(text + "\n")
  _write(os.path.join(args.out, "results.json"), results)
  return 0 if counts["failed"] == counts["timeout"] == 0 and parts else 1


# --- small jobs of the shell script ----------------------------------------------------

def dry_xla_flags() -> int:
  """XLA's cheaper CPU compile flags that this jaxlib knows (XLA aborts on unknown ones)."""
  import mmap
  import jaxlib  # the package only: XLA is not loaded
  lib = os.path.join(os.path.dirname(jaxlib.__file__), "libjax_common.so")
  known = []
  if os.path.exists(lib):
    with open(lib, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
      for flag in ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false"):
        if m.find(flag[2:].split("=")[0].encode()) >= 0:
          known.append(flag)
  print(" ".join(known))
  return 0


def _processes_naming(path: str) -> list[int]:
  mine, found = os.getuid(), []
  for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
      if int(pid) == os.getpid() or os.stat(f"/proc/{pid}").st_uid != mine:
        continue
      with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = f.read().decode(errors="replace").split("\0")
    except OSError:
      continue
    if any(path in a for a in argv):
      found.append(int(pid))
  return found


def reap(path: str) -> int:
  """Ends this user's processes whose command line names `path` (a stopped sweep's trials,
  which run in sessions of their own), by their ids: SIGTERM, then SIGKILL."""
  import signal
  for sig in (signal.SIGTERM, signal.SIGKILL):
    found = _processes_naming(path)
    if not found:
      return 0
    _say(f"ending {len(found)} leftover process(es) of {path}: {found}")
    for pid in found:
      try:
        os.kill(pid, sig)
      except OSError:
        pass
    time.sleep(5)
  return 0


def main(argv=None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  overrides = [a for a in argv if a.startswith("--config.")]
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="what", required=True)
  p = sub.add_parser("preflight")
  p.add_argument("--dry-run", action="store_true")
  p.add_argument("--json", required=True)
  p = sub.add_parser("decode-bandwidth")
  p.add_argument("--json", required=True)
  p.add_argument("--device", required=True)
  p.add_argument("--config", required=True)
  p = sub.add_parser("sweep-summary")
  p.add_argument("--dir", required=True)
  p.add_argument("--json", required=True)
  p = sub.add_parser("attention")
  p.add_argument("--json", required=True)
  sub.add_parser("dry-xla-flags")
  p = sub.add_parser("reap")
  p.add_argument("path")
  p = sub.add_parser("summary")
  p.add_argument("--work", required=True)
  p.add_argument("--out", required=True)
  args = parser.parse_args([a for a in argv if a not in overrides])
  if args.what == "preflight":
    return preflight(args)
  if args.what == "decode-bandwidth":
    return decode_bandwidth(args, [o[len("--config."):] for o in overrides])
  if args.what == "sweep-summary":
    return sweep_summary(args)
  if args.what == "attention":
    return attention(args)
  if args.what == "dry-xla-flags":
    return dry_xla_flags()
  if args.what == "reap":
    return reap(os.path.abspath(args.path))
  return summary(args)


if __name__ == "__main__":
  sys.exit(main())
