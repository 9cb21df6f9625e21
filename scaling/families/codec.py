"""The codec family: a convolutional audio codec with residual vector quantisation
(`scaling.models.codec`) learns to turn spoken counting (`scaling.data.spoken_counting`)
into a few integer codes per frame and back.

Objective (SoundStream, EnCodec): the multi-scale spectral distance of the reconstruction
plus a waveform L1 term, the codebook loss and the commitment loss (both divided by the
latent width, so they weigh as much as a mean squared error would). Each example is
decoded from a random number of levels (quantiser dropout), so that the first q levels
alone decode as well as they can. After each step, with probability
`restart_probability`, codebook entries no frame of the batch chose are moved onto frames
of the batch (dead-code restarts). Costs are counted per training segment.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from scaling import config as config_lib
from scaling import mesh as mesh_lib
from scaling import optim
from scaling.config import require
from scaling.errors import UserError
from scaling.data import pipeline, spoken_counting
from scaling.data.speech import SAMPLE_RATE
from scaling.families import base
from scaling.models import counting, rvq, spectra
from scaling.models.codec import Codec, check_shapes
from scaling.rundir import RunDir
from scaling.train.checkpoint import Checkpointer
from scaling.train.state import StateSpec


def base_config() -> ml_collections.ConfigDict:
  """Every field of a codec config with its default (a 241k-parameter codec at 50 frames
  a second, 4 codebooks of 64 codes: 1,200 bits a second)."""
  return ml_collections.ConfigDict(dict(
      name="codec",
      seed=0,
      model=dict(
          kind="codec",
          channels=8,              # after the first stride; doubled after each next one
          strides=(4, 4, 4, 5),    # hop 320 samples: 50 frames a second at 16 kHz
          dilations=(1, 3),        # one residual unit per entry, after each stride
          latent_dim=16,
          n_codebooks=4,
          codebook_size=64,
      ),
      codec=dict(
          waveform_weight=1.0,     # L1 on samples, beside the spectral distance
          commitment=0.25,
          quantiser_dropout=True,  # decode each example from a random number of levels
          restart_probability=0.05,  # per step: move unused codes onto the batch's frames
      ),
      mesh=dict(data=-1, fsdp=1, tensor=1, rules=mesh_lib.DEFAULT_RULES),
      data=dict(
          kind="speech",
          name="spoken_counting",
          n_speakers=200,          # espeak-ng voices x variants x pitches x speeds
          length=4,                # number words per utterance
          num_train=2048,
          num_test=256,
          segment_s=1.0,           # training segments: windows of this many seconds
          data_dir="",             # "" = $SCALING_DATA_DIR or ~/.cache/scaling/data
          seed=0,                  # speakers, utterances and their order
      ),
      train=base.train_section(steps=3_000, batch_size=16, learning_rate=1e-3),
      eval=dict(every_steps=500, batch_size=32, max_examples=128),
      checkpoint=base.checkpoint_section(),
  ))


def check_speech(d) -> None:
  """The fields of a `data` section of spoken counting (the codec's and the audio LM's)."""
  require(d.kind == "speech" and d.name == "spoken_counting", "data.name",
          f"the codec family reads speech/spoken_counting, got {d.kind}/{d.name}")
  n_max = len(spoken_counting.VOICES) * len(spoken_counting.VARIANTS) * len(
      spoken_counting.PITCHES) * len(spoken_counting.SPEEDS)
  require(1 <= d.n_speakers <= n_max, "data.n_speakers",
          f"must be in [1, {n_max}], got {d.n_speakers}")
  require(1 <= d.length <= len(spoken_counting.NUMBER_WORDS), "data.length",
          f"must be in [1, {len(spoken_counting.NUMBER_WORDS)}], got {d.length}")
  require(d.num_train > 0 and d.num_test > 0, "data.num_train", "split sizes must be positive")


def data_config(d) -> spoken_counting.SpokenCountingConfig:
  """The spoken-counting builder config a `data` section names."""
  return spoken_counting.config_for(n_speakers=d.n_speakers, length=d.length,
                                    num_train=d.num_train, num_test=d.num_test, seed=d.seed)


@dataclasses.dataclass(frozen=True)
class Segments:
  """Fixed-length windows of a split's utterances, [N, T] float32 (pipeline rows)."""
  audio_NT: np.ndarray

  def __len__(self) -> int:
    return len(self.audio_NT)

  def rows(self, index) -> dict[str, np.ndarray]:
    return {"audio": self.audio_NT[index]}


def segments(audio: list[np.ndarray], length: int) -> Segments:
  """Every utterance cut into windows of `length` samples, overlapping by half; the last
  window of each ends at the utterance's end (zero-padded when it is shorter)."""
  out = []
  for a in audio:
    a = np.pad(a, (0, max(length - len(a), 0)))
    starts = sorted({*range(0, len(a) - length + 1, length // 2), len(a) - length})
    out.extend(a[s:s + length] for s in starts)
  return Segments(np.stack(out).astype(np.float32))


def segment_samples(cfg) -> int:
  """Samples per training segment: `segment_s` rounded to whole frames."""
  hop = math.prod(cfg.model.strides)
  return max(1, round(cfg.data.segment_s * SAMPLE_RATE / hop)) * hop


class CodecFamily:
  """Codec training on spoken counting; costs counted per training segment."""

  kind = "codec"
  unit = "sample"
  ema_decay = None
  base_config = staticmethod(base_config)

  def __init__(self, cfg):
    self.cfg = cfg

  def check(self) -> None:
    m, c = self.cfg.model, self.cfg.codec
    for field in ("channels", "latent_dim", "n_codebooks", "codebook_size"):
      require(m[field] > 0, f"model.{field}", f"must be positive, got {m[field]}")
    require(len(m.dilations) > 0 and all(d >= 1 for d in m.dilations), "model.dilations",
            f"must be positive, got {tuple(m.dilations)}")
    check_shapes(m, SAMPLE_RATE)
    require(c.waveform_weight >= 0 and c.commitment >= 0, "codec.commitment",
            "loss weights must be non-negative")
    require(0 <= c.restart_probability <= 1, "codec.restart_probability",
            f"must be in [0, 1], got {c.restart_probability}")
    check_speech(self.cfg.data)
    require(self.cfg.data.segment_s > 0, "data.segment_s",
            f"must be positive, got {self.cfg.data.segment_s}")

  def make_model(self, rngs: nnx.Rngs | None = None) -> nnx.Module:
    with base.eager_sharding():
      return Codec(self.cfg.model, rngs=rngs or nnx.Rngs(params=self.cfg.seed))

  def params(self) -> counting.ParamCounts:
    state = nnx.state(nnx.eval_shape(self.make_model), nnx.Param)
    total = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(state))
    books = int(np.prod(state["quantiser"]["codebooks_QKD"].value.shape))
    return counting.ParamCounts(total, books, total - books)

  def flops_per_unit(self) -> float:
    """Training FLOPs per segment: 6 x the multiply-adds of every convolution at its
    output rate (the spectral loss and the nearest-code search are left out)."""
    m = self.cfg.model
    T = segment_samples(self.cfg)
    widths = [1] + [m.channels * 2 ** i for i in range(len(m.strides))]
    macs, rate = 0, T
    for i, s in enumerate(m.strides):  # encoder; the decoder mirrors it
      rate //= s
      macs += rate * (2 * s * widths[i] * widths[i + 1]
                      + len(m.dilations) * (7 + 1) * widths[i + 1] ** 2)
    macs = 2 * macs + rate * (3 * widths[-1] + 7 * widths[-1]) * m.latent_dim
    return 6.0 * macs

  def units_per_step(self) -> int:
    return self.cfg.train.batch_size

  # --- data ---------------------------------------------------------------------------

  def load_data(self) -> dict:
    config, data_dir = data_config(self.cfg.data), self.cfg.data.data_dir or None
    length = segment_samples(self.cfg)
    return {split: segments(spoken_counting.load(name, config, data_dir).audio, length)
            for split, name in (("train", "train"), ("eval", "test"))}

  def save_artifacts(self, data: dict, workdir: str) -> None:
    del data, workdir  # The config says how to remake the data.

  def train_dataset(self, data: dict, process_index: int, process_count: int):
    return pipeline.train_dataset(data["train"], global_batch=self.cfg.train.batch_size,
                                  seed=self.cfg.data.seed, process_index=process_index,
                                  process_count=process_count)

  def eval_batches(self, data: dict, process_index: int, process_count: int) -> Iterator:
    e = self.cfg.eval
    for index, valid in pipeline.eval_indices(min(len(data["eval"]), e.max_examples),
                                              e.batch_size, process_index, process_count):
      yield {**data["eval"].rows(index), "mask": valid}

  def synthetic_batch(self, rng) -> dict:
    """A global batch of noise segments, shaped like the real ones (benchmarks)."""
    shape = (self.cfg.train.batch_size, segment_samples(self.cfg))
    return {"audio": (0.1 * rng.standard_normal(shape)).astype(np.float32)}

  # --- objective ----------------------------------------------------------------------

  def loss_terms(self, model, batch, key) -> tuple[jax.Array, jax.Array]:
    x_BT = batch["audio"]
    B, Q = x_BT.shape[0], self.cfg.model.n_codebooks
    levels_B = (jax.random.randint(key, (B,), 1, Q + 1) if self.cfg.codec.quantiser_dropout
                else None)
    y_BT, _, losses = model(x_BT, levels_B)
    loss = (spectra.spectral_loss(x_BT, y_BT)
            + self.cfg.codec.waveform_weight * jnp.mean(jnp.abs(x_BT - y_BT))
            + (losses["codebook"] + self.cfg.codec.commitment * losses["commitment"])
            / self.cfg.model.latent_dim)
    return loss * B, jnp.asarray(B, jnp.float32)

  def optimizer(self) -> optax.GradientTransformation:
    return optim.optimizer(self.cfg.train)

  def update(self, model_of, tx, params, opt_state, batch, key):
    """A gradient step, then (sometimes) dead-code restarts on the batch's frames."""
    key_loss, key_restart, key_gate = jax.random.split(key, 3)
    params, opt_state, metrics = base.gradient_update(
        lambda p, b, k: self.loss_terms(model_of(p), b, k), tx, params, opt_state, batch,
        key_loss, self.cfg.train.microbatches)
    model = model_of(params)
    z_BFD = jax.lax.stop_gradient(model.latents(batch["audio"]))
    books = model.quantiser.codebooks_QKD[...]
    restarted = rvq.restart_dead_codes(
        books, model.quantiser.residuals(z_BFD.reshape(-1, z_BFD.shape[-1])), key_restart)
    gate = jax.random.uniform(key_gate) < self.cfg.codec.restart_probability
    params["quantiser"]["codebooks_QKD"].value = jnp.where(gate, restarted, books)
    return params, opt_state, metrics

  # --- held-out metrics ---------------------------------------------------------------

  def eval_sums(self, model, batch, key) -> dict:
    """Per example of the held-out segments, decoded from all levels: the spectral
    distance, SI-SNR, log-mel distance; silent (all-zero) segments are left out."""
    del key
    x_BT = batch["audio"]
    y_BT = model.decode(model.encode(x_BT))
    m = batch["mask"] * (jnp.abs(x_BT).max(-1) > 0)
    mel = jnp.mean(jnp.abs(spectra.log_mel(x_BT, SAMPLE_RATE)
                           - spectra.log_mel(y_BT, SAMPLE_RATE)), (1, 2))
    spectral = jax.vmap(lambda a, b: spectra.spectral_loss(a[None], b[None]))(x_BT, y_BT)
    si_snr = jnp.where(m > 0, spectra.si_snr(x_BT, y_BT), 0.0)
    return {"spectral": (spectral * m).sum(), "si_snr": (si_snr * m).sum(),
            "mel": (mel * m).sum(), "examples": m.sum()}

  @staticmethod
  def eval_metrics(totals: dict[str, float]) -> dict[str, float]:
    n = max(totals["examples"], 1)
    return {"eval_loss": totals["spectral"] / n, "eval_si_snr": totals["si_snr"] / n,
            "eval_mel_distance": totals["mel"] / n, "eval_examples": totals["examples"]}

  def activations(self, model, batch, key) -> dict[str, jax.Array]:
    del key
    x = batch["audio"][..., None]
    out = {}
    for i, block in enumerate(model.encoder):
      x = block(x)
      out[f"encoder.{i}"] = jnp.mean(jnp.abs(x))
    return out


@dataclasses.dataclass(frozen=True)
class TrainedCodec:
  """A codec run's config and its newest checkpoint's model (on the default device)."""
  workdir: str
  cfg: ml_collections.ConfigDict
  model: Codec
  step: int


@functools.lru_cache(maxsize=4)
def load_codec(workdir: str) -> TrainedCodec:
  """The trained codec in run directory `workdir` (one `error:` line when it is not one)."""
  path = RunDir(workdir).config
  if not os.path.exists(path):
    raise UserError(f"{workdir} is not a run directory (no config.json)")
  cfg = config_lib.from_json(path)
  if cfg.model.get("kind") != "codec":
    raise UserError(f"{workdir} holds a {cfg.model.get('kind')!r} run, not a codec")
  family = CodecFamily(cfg)
  with cfg.unlocked():
    cfg.mesh.update(data=1, fsdp=1, tensor=1)
  mesh = mesh_lib.make_mesh(cfg.mesh, jax.devices()[:1])
  if not os.path.isdir(RunDir(workdir).checkpoints):
    raise UserError(f"{workdir} has no checkpoint to load")
  with Checkpointer(RunDir(workdir).checkpoints, cfg.checkpoint, read_only=True) as ckpt, \
      mesh_lib.activate(mesh, mesh_lib.complete_rules(cfg.mesh.rules)):
    spec = StateSpec(family.make_model, family.optimizer(), mesh)
    step, restored = ckpt.restore_params({"params": spec.abstract.params})
  return TrainedCodec(os.path.abspath(workdir), cfg, spec.model(restored["params"]), step)
