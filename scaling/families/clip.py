"""The contrastive family: an image tower and a text tower learn one embedding space from
digit images paired with generated captions (`scaling.data.captions`).

The loss is SigLIP's sigmoid loss (Zhai et al. 2023), not CLIP's symmetric InfoNCE: each
image-caption pair of the batch is its own binary question, "does this caption describe
this image". With ten digits, a batch of 64 holds about six images of each, and a caption
describes every image of its digit: the sigmoid loss takes all of them as positives, where
InfoNCE's softmax assumes one positive per row and would push the others apart. Each
training image is paired with a caption of its digit drawn from the run's seed and the
step (any template; the held-out sums never). Costs are counted per image.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from scaling import mesh as mesh_lib
from scaling.config import require
from scaling.data import captions, image_sets
from scaling.families import base, image_data
from scaling.models import counting
from scaling.models.clip import CLIP
from scaling.models.dit import check_shapes


def base_config() -> ml_collections.ConfigDict:
  """Every field of a contrastive config with its default (two ~60k-parameter towers on
  8x8 digits); presets in `configs/clip/` start from here."""
  return ml_collections.ConfigDict(dict(
      name="clip",
      seed=0,
      model=dict(
          kind="clip",
          d_model=48, n_layers=2, n_heads=4, n_kv_heads=4, d_ff=192,  # each tower
          mlp="gelu",              # gelu | swiglu
          embed_dim=32,            # the shared space
          patch_size=2,            # image tower; image_size must be divisible by it
          rope_base=10_000.0,      # text tower
          norm_eps=1e-6,
          dtype="float32",         # compute dtype; parameters are always float32
          attention="xla",         # xla | cudnn
          scan_layers=False,
          remat="none",            # none | full | dots_saveable
          parametrization="sp",    # sp only (muP's readout is not defined for this loss)
          base_width=64,
      ),
      mesh=dict(data=-1, fsdp=1, tensor=1, rules=mesh_lib.DEFAULT_RULES),
      data=image_data.data_section(),
      train=base.train_section(steps=1_500, learning_rate=2e-3, batch_size=128,
                               weight_decay=1e-4),
      eval=dict(every_steps=500, batch_size=256, max_examples=1_024),
      checkpoint=base.checkpoint_section(),
  ))


def siglip_loss_sum(logits_BC: jax.Array, positive_BC: jax.Array, valid_BC: jax.Array):
  """SigLIP's loss summed over the valid pairs: -log sigmoid(z * logit), z = +1 for a
  positive pair and -1 otherwise."""
  z_BC = jnp.where(positive_BC, 1.0, -1.0)
  return -jnp.sum(jax.nn.log_sigmoid(z_BC * logits_BC) * valid_BC)


class CLIPFamily(base.OneObjective, image_data.ImageData):
  """Contrastive image-text learning on captioned digits; costs counted per image."""

  kind = "clip"
  unit = "sample"
  ema_decay = None
  base_config = staticmethod(base_config)

  def __init__(self, cfg):
    self.cfg = cfg
    self.text_length = captions.max_tokens(cfg.data.num_classes)

  def check(self) -> None:
    m = self.cfg.model
    base.check_transformer(m)
    image_sets.check(self.cfg.data)
    check_shapes(m, self.cfg.data.image_size)
    require(m.embed_dim > 0, "model.embed_dim", f"must be positive, got {m.embed_dim}")
    require(m.parametrization == "sp", "model.parametrization",
            "the contrastive family trains in the standard parametrization only")
    require(self.cfg.data.num_classes == 10, "data.num_classes",
            "captions name the digits 0-9: use a 10-class image set")
    # The loss compares every image of the batch with every caption of it: a microbatch
    # would see only its own pairs, a different objective.
    require(self.cfg.train.microbatches == 1, "train.microbatches",
            "must be 1: the contrastive loss pairs every image with every caption of the "
            "whole batch")

  def make_model(self, rngs: nnx.Rngs | None = None) -> nnx.Module:
    d = self.cfg.data
    with base.eager_sharding():
      return CLIP(self.cfg.model, d.image_size, d.channels, captions.VOCAB_SIZE,
                  rngs=rngs or nnx.Rngs(params=self.cfg.seed))

  def params(self) -> counting.ParamCounts:
    """Counted from the model's shapes: the byte embedding table is the embedding."""
    state = nnx.state(nnx.eval_shape(self.make_model), nnx.Param)
    total = sum(x.size for x in jax.tree.leaves(state))
    embedding = captions.VOCAB_SIZE * self.cfg.model.d_model
    return counting.ParamCounts(total, embedding, total - embedding)

  def flops_per_unit(self) -> float:
    """Training FLOPs per image-caption pair: 6 x (each tower's block and projection
    weights x its tokens) plus attention's 12 x layers x D x tokens^2 per tower; the pair
    logits (B x B x E per batch) are left out."""
    m, d = self.cfg.model, self.cfg.data
    patches = (d.image_size // m.patch_size) ** 2
    patch_in = m.patch_size ** 2 * d.channels
    mlp = counting.mlp_params(m)
    head_dim = m.d_model // m.n_heads
    attn = m.d_model * head_dim * (2 * m.n_heads + 2 * m.n_kv_heads)
    block = attn + mlp
    flops = 0.0
    for tokens, extra in ((patches, patch_in * m.d_model), (self.text_length, 0)):
      weights = m.n_layers * block + extra + m.d_model * m.embed_dim
      flops += 6 * weights * tokens + 12 * m.n_layers * m.d_model * tokens ** 2
    return flops

  def units_per_step(self) -> int:
    return self.cfg.train.batch_size

  # --- objective ----------------------------------------------------------------------

  def _captions(self, split: str) -> captions.CaptionTable:
    return captions.table(split, self.cfg.data.num_classes, self.text_length)

  def draw_captions(self, labels_B: jax.Array, key, split: str = "train") -> jax.Array:
    """[B, T] tokens of one caption of each image's digit, drawn uniformly from the split's
    captions of that digit."""
    table = self._captions(split)
    of_label_BC = labels_B[:, None] == jnp.asarray(table.labels_C)[None, :]
    index_B = jax.random.categorical(key, jnp.where(of_label_BC, 0.0, -jnp.inf), axis=-1)
    return jnp.asarray(table.tokens_CT)[index_B]

  def _pair_terms(self, model, images_B, labels_B, key, valid_B):
    tokens_BT = self.draw_captions(labels_B, key)
    logits_BB = model.logits(model.image(images_B), model.text(tokens_BT))
    positive_BB = labels_B[:, None] == labels_B[None, :]
    valid_BB = valid_B[:, None] * valid_B[None, :]
    return siglip_loss_sum(logits_BB, positive_BB, valid_BB), valid_B.sum(), valid_BB.sum()

  def loss_terms(self, model, batch, key) -> tuple[jax.Array, jax.Array]:
    """SigLIP's normalisation: the pair losses summed, divided by the batch size."""
    valid_B = jnp.ones(batch["labels"].shape, jnp.float32)
    total, images, _ = self._pair_terms(model, batch["images"], batch["labels"], key, valid_B)
    return total, images

  def eval_sums(self, model, batch, key) -> dict:
    """The held-out loss per pair (captions drawn from the evaluation's key), so batches of
    any size add up, and zero-shot accuracy with the `word` prompts."""
    valid_B = batch["mask"].astype(jnp.float32)
    total, n, pairs = self._pair_terms(model, batch["images"], batch["labels"], key, valid_B)
    prompts_KT = jnp.asarray(captions.encode(
        [captions.captions(k, "word")[0] for k in range(self.cfg.data.num_classes)],
        self.text_length))
    image_BE = model.image(batch["images"])
    predicted_B = jnp.argmax(model.logits(image_BE, model.text(prompts_KT)), axis=-1)
    correct = jnp.sum((predicted_B == batch["labels"]) * valid_B)
    return {"pair_loss": total, "pairs": pairs, "correct": correct, "examples": n}

  @staticmethod
  def eval_metrics(totals: dict[str, float]) -> dict[str, float]:
    """The mean sigmoid loss per held-out pair (nats) and zero-shot accuracy."""
    n = max(totals["examples"], 1)
    return {"eval_loss": totals["pair_loss"] / max(totals["pairs"], 1),
            "eval_zero_shot_accuracy": totals["correct"] / n, "eval_examples": totals["examples"]}

  def activations(self, model, batch, key) -> dict[str, jax.Array]:
    del key
    return {"image_embedding": jnp.abs(model.image(batch["images"])).mean()}
