"""The measured CPU peak behind MFU: measured once per host, safe inside a run's mesh."""

import json
import math
import os

import jax

from scaling import hardware


def test_peak_is_measured_inside_a_run_mesh():
  # A run enters its 8-device mesh before it asks for the peak (the first run on a new
  # machine, with no cached peak, used to fail here).
  with jax.set_mesh(jax.make_mesh((8,), ("data",))):
    flops = hardware.measure_matmul_flops(n=256, repeats=2)
  assert math.isfinite(flops) and flops > 1e8


def test_peak_cache_is_written_and_a_corrupt_one_is_measured_again(tmp_path, monkeypatch):
  monkeypatch.setenv("HOME", str(tmp_path))
  cache = tmp_path / ".cache" / "scaling" / "cpu_peak.json"
  cache.parent.mkdir(parents=True)
  cache.write_text("{not json")
  measured = hardware.cpu_peak_flops()
  table = json.loads(cache.read_text())
  assert list(table.values()) == [measured]
  # The second call reads the cache rather than measuring (same number to the bit).
  monkeypatch.setattr(hardware, "measure_matmul_flops", lambda: 1.0)
  assert hardware.cpu_peak_flops() == measured
  assert os.listdir(cache.parent) == ["cpu_peak.json"]  # no temporary file left behind
