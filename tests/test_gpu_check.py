"""tools/gpu_check.sh: its dry run runs every part on CPU and writes every number the GPU
run would report; its helper says in one line what is missing and counts decode bytes."""

import glob
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT, one_device_env

SCRIPT = os.path.join(ROOT, "tools", "gpu_check.sh")


def _tool():
  spec = importlib.util.spec_from_file_location(
      "gpu_check", os.path.join(ROOT, "tools", "gpu_check.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _env() -> dict:
  """The test session's environment, with one CPU device (as a user's machine has)."""
  env = dict(one_device_env(), PYTHON=sys.executable)
  env.pop("OUT", None)
  return env


def _read(path):
  with open(path) as f:
    return json.load(f)


@pytest.mark.slow
def test_dry_run_writes_every_part_and_the_summary(tmp_path):
  out = tmp_path / "out"
  proc = subprocess.run(["bash", SCRIPT, "--dry-run", "--out", str(out)], env=_env(),
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
  parts = [json.loads(line) for line in (out / "parts.jsonl").read_text().splitlines()]
  assert [p["status"] for p in parts] == ["ok"] * len(parts), parts
  assert {p["part"] for p in parts} >= {"preflight", "train-lm-tiny-xla", "decode-lm-tiny-xla-b1",
                                        "decode-lm-tiny-xla-b64", "attention", "sweep-arithmetic",
                                        "train-dit"}
  js = out / "json"
  assert _read(js / "device.json")["memory_bandwidth_bytes_per_second"] > 0

  for name, unit in (("train-lm-tiny-xla", "tokens"), ("train-dit", "samples")):
    r = _read(js / f"{name}.json")
    assert r["step_time_s"] > 0 and 0 < r["mfu"] < 10 and r[f"{unit}_per_second"] > 0, r
  lm = _read(js / "train-lm-tiny-xla.json")
  assert (lm["scan_layers"], lm["remat"], lm["attention"]) == (True, "dots_saveable", "xla")

  for batch in (1, 64):
    [row] = _read(js / f"decode-lm-tiny-xla-b{batch}.json")
    assert row["batch"] == batch and row["cached_decode_tokens_per_second"] > 0, row
    assert row["bandwidth_share"] > 0 and row["bound_tokens_per_second"] > 0, row
    assert row["bytes_per_step"] == row["weight_bytes_per_step"] + row["kv_bytes_per_step"]

  attention = _read(js / "attention.json")
  assert [(r["what"], r["mask"]) for r in attention] == [
      ("train", "causal"), ("train", "packed"), ("decode", "cache")], attention
  assert all(r["ms"] > 0 for r in attention), attention

  sweep = _read(js / "sweep.json")
  assert sweep["completed"] == len(sweep["trials"]) == 2, sweep
  assert sweep["analysis"] and sweep["report"] and sweep["figures"], sweep
  assert "fits" in _read(out / "sweep" / "analysis.json")

  summary = (out / "summary.txt").read_text()
  for text in ("MFU", "share", "text-tiny_shakespeare-tiny", "digits-dit-d0", "sweep: 2/2",
               "attention (fwd+bwd)"):
    assert text in summary, summary
  results = _read(out / "results.json")
  assert set(results["train"]) == {"train-lm-tiny-xla", "train-dit"}
  assert len(results["decode"]) == 2 and results["sweep"]["completed"] == 2
  assert len(results["attention"]) == 3
  assert (out / "gpu_check.tar.gz").stat().st_size > 0 and (out / "gpu_check.log").exists()
  assert not glob.glob(str(out / "sweep" / "runs" / "*" / "checkpoints" / "*.tmp"))


def test_preflight_names_missing_packages_and_a_missing_gpu(tmp_path, monkeypatch, capsys):
  tool = _tool()
  monkeypatch.setattr(tool, "requirements", lambda: [
      "surely-absent-package>=1", "numpy>=999", "optax>=0.1", 'other-absent; extra == "x"'])
  missing = tool.missing_packages()
  assert missing == (["surely-absent-package", f"numpy ({np.__version__}; needs >=999)"],
                     []), missing
  assert tool.missing_packages.__module__ and tool.import_error() is None

  # On this CPU-only machine, a real (not dry) run stops at once with one line.
  monkeypatch.undo()  # the real requirements again
  args = type("Args", (), dict(dry_run=False, json=str(tmp_path / "device.json")))
  assert tool.preflight(args) == 3
  assert capsys.readouterr().out.strip().splitlines()[-1].startswith(
      "gpu_check: JAX sees no GPU")
  assert not (tmp_path / "device.json").exists()


def test_decode_bandwidth_counts_weights_and_the_live_cache(tmp_path):
  tool = _tool()
  rows = [{"name": "x", "batch": 4, "prompt_len": 10, "new_tokens": 6,
           "cached_decode_tokens_per_second": 1000.0, "cached_ms_per_token": 4.0}]
  (tmp_path / "decode.json").write_text(json.dumps(rows))
  (tmp_path / "device.json").write_text(json.dumps({
      "memory_bandwidth_bytes_per_second": 1e9, "memory_bandwidth_source": "test"}))
  args = type("Args", (), dict(json=str(tmp_path / "decode.json"), config=
                               f"{ROOT}/configs/lm/text.py:size=tiny",
                               device=str(tmp_path / "device.json")))
  assert tool.decode_bandwidth(args, ["model.dtype=bfloat16"]) == 0
  [r] = _read(tmp_path / "decode.json")
  # tiny: d_model 64, 2 layers, 4 heads of 16, vocab 1024, GELU MLP of 256.
  D, L, V = 64, 2, 1024
  non_embedding = L * (4 * D * D + 2 * D * 4 * D + 2 * D) + D
  assert r["params"]["non_embedding"] == non_embedding
  assert r["weight_bytes_per_step"] == 2 * (non_embedding + V * D)
  assert r["kv_bytes_per_step"] == 4 * (10 + 3.5) * 2 * L * D * 2
  assert r["bound_tokens_per_second"] == pytest.approx(4 * 1e9 / r["bytes_per_step"])
  assert r["bandwidth_share"] == pytest.approx(1000 / r["bound_tokens_per_second"])
  assert r["bandwidth_share_f32_weights"] > r["bandwidth_share"]


def test_attention_check_compares_cudnn_with_xla(tmp_path, monkeypatch):
  """The GPU branch, on CPU: 'cudnn' runs as XLA's attention, so every difference is 0."""
  import jax
  tool = _tool()
  attention = jax.nn.dot_product_attention
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  monkeypatch.setattr(jax.nn, "dot_product_attention",
                      lambda *a, implementation=None, **k: attention(*a, implementation="xla", **k))
  monkeypatch.setitem(tool.ATTENTION_SHAPES, "gpu", (2, 32, 2, 16, 8))
  args = type("Args", (), dict(json=str(tmp_path / "attention.json")))
  assert tool.attention(args) == 0
  rows = _read(tmp_path / "attention.json")
  assert [(r["what"], r["mask"], r["implementation"]) for r in rows] == [
      ("train", "causal", "cudnn"), ("train", "causal", "xla"), ("train", "packed", "cudnn"),
      ("train", "packed", "xla"), ("decode", "cache", "cudnn"), ("decode", "cache", "xla")]
  assert all(r["ms"] > 0 and r["dtype"] == "bfloat16" for r in rows), rows
  assert [r.get("max_rel_diff_vs_xla") for r in rows if r["implementation"] == "cudnn"] == [0, 0, 0]

  # A cuDNN case that refuses its shape is reported and the others still run.
  def refuse(*a, implementation=None, **k):
    if implementation == "cudnn" and k.get("mask") is not None:
      raise NotImplementedError("Unsupported sequence length Q 1, KV 8.")
    return attention(*a, implementation="xla", **k)
  monkeypatch.setattr(jax.nn, "dot_product_attention", refuse)
  assert tool.attention(args) == 0
  rows = _read(tmp_path / "attention.json")
  assert [r["implementation"] for r in rows if "error" in r] == ["cudnn", "cudnn"]
  assert "NotImplementedError" in rows[2]["error"] and len(rows) == 6

  # Wrong numbers from cuDNN fail the part.
  monkeypatch.setattr(jax.nn, "dot_product_attention", lambda *a, implementation=None, **k: (
      attention(*a, implementation="xla", **k) * (1.5 if implementation == "cudnn" else 1)))
  assert tool.attention(args) == 1
  assert all(r["max_rel_diff_vs_xla"] > 0.05 for r in _read(tmp_path / "attention.json")
             if r["implementation"] == "cudnn")
