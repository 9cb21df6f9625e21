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
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  cache = tmp_path / "scaling" / "cpu_peak.json"
  cache.parent.mkdir(parents=True)
  cache.write_text("{not json")
  monkeypatch.setattr(hardware, "measure_matmul_flops", lambda repeats: 5e10)
  assert hardware.cpu_peak_flops() == 5e10
  table = json.loads(cache.read_text())
  assert list(table.values()) == [5e10]
  # The second call reads the cache rather than measuring.
  monkeypatch.setattr(hardware, "measure_matmul_flops", lambda repeats: 1.0)
  assert hardware.cpu_peak_flops() == 5e10
  assert os.listdir(cache.parent) == ["cpu_peak.json"]  # no temporary file left behind


def test_the_cached_peak_is_the_best_seen(tmp_path, monkeypatch):
  """A peak measured while the cores were shared (half the real one: MFU read twice too
  high) is replaced by the next better measurement, and never replaces a better one."""
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  monkeypatch.setattr(hardware, "measure_matmul_flops", lambda repeats: 6e10)
  assert hardware.cpu_peak_flops() == 6e10  # measured under load
  assert hardware.record_cpu_peak(1.3e11) == 1.3e11  # `bench train` between its steps
  assert hardware.cpu_peak_flops() == 1.3e11
  assert hardware.record_cpu_peak(9e10) == 1.3e11
  assert hardware.cpu_peak_flops() == 1.3e11
