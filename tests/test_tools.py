"""The scripts in tools/ run against the current library (they import it, and nothing else
exercises them)."""

import importlib.util
import os

from tests.helpers import LM_CONFIG, ROOT, TINY


def load_tool(name: str):
  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "tools", f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_bench_reference_times_the_toolkit_against_bare_jax(capsys):
  tool = load_tool("bench_reference")
  overrides = [f"--config.{o}" for o in (*TINY, "model.n_kv_heads=4")]
  tool.main([f"--config={LM_CONFIG}", "--steps=1", "--rounds=1", *overrides])
  out = capsys.readouterr().out
  assert "toolkit" in out and "bare JAX" in out and "ratio toolkit / bare JAX" in out, out


def test_compare_sweeps_and_code_temperature_parse_their_flags(capsys):
  for name in ("compare_sweeps", "code_temperature"):
    tool = load_tool(name)
    try:
      tool.main(["--help"])
    except SystemExit as e:
      assert e.code == 0
    assert "usage:" in capsys.readouterr().out
