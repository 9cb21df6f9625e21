"""Diffusion runs end to end: sharded training is exact, resume is exact, sampling and
evaluation work on a trained run, and bad input fails with one line."""

import json
import os
import shutil
import statistics

import jax
import numpy as np
import pytest

from scaling import cli, runs
from scaling.generate import image_sampling
from scaling.train import loop
from tests.helpers import DIT_CONFIG, TINY_DIT, final_params, losses, tiny_dit

# (2, 2, 2) shards every axis at once; the LM tests cover the other mesh shapes.
MESHES = [(1, 1, 1), (8, 1, 1), (2, 2, 2)]


@pytest.fixture(scope="module")
def mesh_runs(tmp_path_factory):
  out = {}
  for data, fsdp, tensor in MESHES:
    cfg = tiny_dit("train.steps=3", f"mesh.data={data}", f"mesh.fsdp={fsdp}",
                   f"mesh.tensor={tensor}")
    workdir = str(tmp_path_factory.mktemp("dit_mesh"))
    assert loop.train(cfg, workdir, devices=jax.devices()[:data * fsdp * tensor]) == 0
    out[(data, fsdp, tensor)] = workdir
  return out


@pytest.mark.parametrize("shape", MESHES[1:])
def test_sharded_dit_training_equals_single_device(mesh_runs, shape):
  reference, sharded = losses(mesh_runs[(1, 1, 1)]), losses(mesh_runs[shape])
  assert sorted(reference) == [1, 2, 3]
  np.testing.assert_allclose([sharded[s] for s in (1, 2, 3)],
                             [reference[s] for s in (1, 2, 3)], rtol=0, atol=1e-5)
  assert len({round(v, 4) for v in reference.values()}) > 1  # training moved
  ref_params, params = final_params(mesh_runs[(1, 1, 1)]), final_params(mesh_runs[shape])
  for path in ref_params:
    np.testing.assert_allclose(params[path], ref_params[path], rtol=0, atol=1e-5,
                               err_msg=path)


def test_summary_counts_samples(mesh_runs):
  with open(os.path.join(mesh_runs[(1, 1, 1)], "summary.json")) as f:
    summary = json.load(f)
  assert summary["status"] == "completed"
  assert summary["samples_seen"] == 3 * 16
  assert summary["training_flops"] == pytest.approx(3 * 16 * summary["flops_per_sample"])
  assert summary["final_eval"]["eval_loss"] > 0
  # The held-out error is reported per fixed noise level, and their mean is eval_loss.
  per_t = [summary["final_eval"][f"eval_mse_t{t}"] for t in (10, 50, 90)]
  assert summary["final_eval"]["eval_loss"] == pytest.approx(np.mean(per_t))


def test_resume_with_ema_is_exact(tmp_path):
  """A run resumed from its step-4 checkpoint ends with the uninterrupted run's weights
  and EMA (the step's noise comes from the seed and step, not from a consumed stream)."""
  cfg = tiny_dit("train.steps=8", "checkpoint.every_steps=4", "checkpoint.max_to_keep=5",
                 "checkpoint.async_save=False")
  full, resumed = str(tmp_path / "full"), str(tmp_path / "resumed")
  assert loop.train(cfg, full) == 0
  shutil.copytree(full, resumed)
  shutil.rmtree(os.path.join(resumed, "checkpoints", "8"))
  assert loop.train(cfg, resumed) == 0
  assert losses(resumed) == losses(full)
  for field in ("params", "ema"):
    a, b = final_params(full, field), final_params(resumed, field)
    assert a
    for path in a:
      np.testing.assert_array_equal(a[path], b[path], err_msg=f"{field}{path}")
  # The EMA lags the weights: a different set of numbers.
  params, ema = final_params(full, "params"), final_params(full, "ema")
  assert params.keys() == ema.keys()
  assert any(not np.array_equal(params[k], ema[k]) for k in params)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("dit_trained"))
  assert loop.train(tiny_dit("train.steps=30"), workdir) == 0
  return workdir


def test_sampling_sharded_over_devices_equals_one_device(trained):
  labels = np.arange(16) % 10
  settings = image_sampling.SamplerSettings(steps=5, method="ddpm", guidance=2.0)
  one = image_sampling.generate(runs.load(trained, devices=jax.devices()[:1]), labels, settings,
                        seed=3)
  eight = image_sampling.generate(runs.load(trained, devices=jax.devices()), labels, settings, seed=3)
  assert one.shape == (16, 8, 8, 1)
  # The same numbers up to float rounding: per-device batches of 2 and 16 fuse and round
  # differently, and the sampler compounds that over its steps.
  np.testing.assert_allclose(eight, one, rtol=0, atol=2e-4)
  assert np.all(np.abs(one) <= 1.0)
  # A different seed draws different images.
  other = image_sampling.generate(runs.load(trained, devices=jax.devices()[:1]), labels, settings,
                          seed=4)
  assert np.abs(other - one).max() > 0.1


def test_sample_cli_writes_png_grid(trained, tmp_path):
  out = str(tmp_path / "grid.png")
  code = cli.main(["sample", f"--workdir={trained}", "--class", "3", "-n", "6", "--steps",
                   "5", "--guidance", "2.0", f"--out={out}"])
  assert code == 0
  import matplotlib.image
  png = matplotlib.image.imread(out)
  # 6 images of 8x8 in 2 rows of 3, 1-pixel borders, drawn 4x: (2*9+1)*4 by (3*9+1)*4.
  assert png.shape[:2] == (76, 112)


def test_eval_writes_image_metrics(trained):
  code = cli.main(["eval", f"--workdir={trained}", "-n", "4", "--steps", "2,5",
                   "--guidance", "0,2"])
  assert code == 0
  with open(os.path.join(trained, "eval.json")) as f:
    tasks = json.load(f)["tasks"]
  # One axis at a time, the config's setting (DDIM, 10 steps, guidance 2) first.
  assert list(tasks["image_quality"]) == ["ddim10/g2", "ddim2/g2", "ddim5/g2", "ddim10/g0"]
  for subset in tasks["image_quality"].values():
    assert subset["n"] == 40
    assert set(subset["metrics"]) == {"class_accuracy", "fd", "kid", "precision", "recall",
                                      "density", "coverage", "class_coverage",
                                      "class_balance"}
    assert subset["chance"]["class_accuracy"] == 0.1
    assert subset["metrics"]["fd"]["mean"] > 0
  # The untrained model's FD, the headline's 'chance', is worse than 30 steps of training.
  headline = tasks["image_quality"]["ddim10/g2"]
  assert headline["chance"]["fd"] > headline["metrics"]["fd"]["mean"]
  assert set(tasks["denoising"]) == {"t10", "t50", "t90"}
  real = tasks["real_data"]["test_vs_train"]["metrics"]
  # Held-out digits against training digits: the same distribution, so every class is
  # covered and both manifolds hold most of the other's samples; 30 steps of training
  # are far from that.
  assert real["class_coverage"]["mean"] == 1.0
  assert real["precision"]["mean"] > 0.8 and real["recall"]["mean"] > 0.8
  assert headline["metrics"]["recall"]["mean"] < real["recall"]["mean"]


@pytest.mark.parametrize("args, message", [
    (["--class", "10"], "unknown class id 10"),
    (["--class", "-1"], "unknown class id -1"),
    (["--steps", "101"], "steps"),
    (["--guidance", "-1"], "guidance"),
    (["--prompt", "hi"], "give classes, not --prompt"),
])
def test_bad_sample_input_is_one_line(trained, capsys, args, message):
  assert cli.main(["sample", f"--workdir={trained}", *args]) == 1
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: ") and message in err and "\n" not in err


@pytest.mark.parametrize("override, message", [
    ("model.patch_size=3", "model.patch_size"),
    ("diffusion.sample_steps=200", "steps"),
    ("diffusion.guidance=-1.0", "guidance"),
    ("diffusion.eval_timesteps=(100,)", "diffusion.eval_timesteps"),
    ("data.name=imagenet", "data.name"),
])
def test_bad_config_is_one_line(tmp_path, capsys, override, message):
  workdir = str(tmp_path / "run")
  code = cli.main(["train", f"--config={DIT_CONFIG}", f"--workdir={workdir}",
                   *[f"--config.{o}" for o in (*TINY_DIT, override)]])
  assert code == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-1].startswith("error: ") and message in err[-1], err
  assert not os.path.exists(workdir)


def test_bench_train_counts_samples():
  from scaling import bench
  result = bench.bench_train(tiny_dit(), steps=3, warmup=0, devices=jax.devices()[:1],
                             rounds=2)
  assert result["image_size"] == 8 and "seq_len" not in result
  # On a CPU the peak is measured between the rounds of timed steps, and MFU is against
  # their median.
  assert len(result["step_time_s_all"]) == 3 and len(result["peak_flops_per_second_all"]) == 2
  assert result["peak_flops_per_second"] == statistics.median(result["peak_flops_per_second_all"])
  assert "between the timed steps" in result["peak_source"]
  assert result["samples_per_second"] == pytest.approx(16 / result["step_time_s"])
  assert result["flops_per_sample"] > 0 and result["memory"]["planned_peak_bytes"] > 0


def test_reproduce_diffusion_run(trained, capsys):
  """Training and image evaluation are deterministic: a re-run gives the same numbers."""
  from scaling.sweep import reproduce
  assert cli.main(["eval", f"--workdir={trained}", "-n", "3", "--steps", "3"]) == 0
  assert reproduce.reproduce(trained) == 0
  out = capsys.readouterr().out
  assert "image_quality/ddim3/g2/fd" in out and "the numbers match" in out
