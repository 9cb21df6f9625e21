"""The video DiT: tubelets round-trip, factorised attention is joint attention under its
block masks, and the model maps clips to clips, starting at zero."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from scaling.families import diffusion
from scaling.families.base import eager_sharding
from scaling.models import video_dit
from scaling.models.layers import Attention


def _cfg(attention: str, **fields):
  cfg = ml_collections.ConfigDict(diffusion.base_config().model.to_dict())
  cfg.update(d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=64, patch_size=4)
  with cfg.unlocked():
    cfg.tubelet, cfg.video_attention, cfg.video_rope = 2, attention, True
  cfg.update(**fields)
  return cfg


def test_tubelets_round_trip_frame_major():
  x = jax.random.normal(jax.random.key(0), (2, 8, 16, 16, 1))
  tokens = video_dit.tubelets(x, 2, 4)
  assert tokens.shape == (2, 4 * 16, 2 * 4 * 4)
  np.testing.assert_array_equal(video_dit.untubelets(tokens, 2, 4, 8, 16, 1), x)
  # Token 0 holds frames 0-1 of the top-left 4x4 patch; token 16 starts the next frames.
  np.testing.assert_array_equal(tokens[0, 0].reshape(2, 4, 4), x[0, :2, :4, :4, 0])
  np.testing.assert_array_equal(tokens[0, 16].reshape(2, 4, 4), x[0, 2:4, :4, :4, 0])


@pytest.mark.parametrize("rope", [False, True])
def test_factorised_attention_is_joint_attention_under_block_masks(rope):
  B, F, g, D = 2, 4, 3, 32
  S = g * g
  with eager_sharding():
    attn = Attention(D, 4, 2, rope_base=None, dtype=jnp.float32, implementation="xla",
                     out_scale=1.0, rngs=nnx.Rngs(params=0), causal=False)
  x_BLD = jax.random.normal(jax.random.key(1), (B, F * S, D))
  frame_L, place_L = np.repeat(np.arange(F), S), np.tile(np.arange(S), F)
  same_frame = jnp.asarray(frame_L[:, None] == frame_L[None, :])[None, None]
  same_place = jnp.asarray(place_L[:, None] == place_L[None, :])[None, None]
  mask = lambda m: jnp.broadcast_to(m, (B, 1, F * S, F * S))
  # With rotary positions, each sequence keeps its tokens' clip angles; the joint block's
  # 3-D table is the same one, so only the masks differ.
  rot = video_dit.clip_rotary(x_BLD, F, D // 4) if rope else None
  within_rot = video_dit.per_sequence(rot, B, video_dit.within_frames, F) if rope else None
  across_rot = video_dit.per_sequence(rot, B, video_dit.across_frames, F) if rope else None
  joint_rot = jnp.asarray(rot) if rope else None

  within, _ = attn(video_dit.within_frames(x_BLD, F), None, rotary_2LK=within_rot)
  joint, _ = attn(x_BLD, None, mask(same_frame), rotary_2LK=joint_rot)
  np.testing.assert_allclose(within.reshape(B, F * S, D), joint, atol=1e-5, rtol=0)

  across, _ = attn(video_dit.across_frames(x_BLD, F), None, rotary_2LK=across_rot)
  joint, _ = attn(x_BLD, None, mask(same_place), rotary_2LK=joint_rot)
  np.testing.assert_allclose(video_dit.from_across_frames(across, B, F), joint, atol=1e-5,
                             rtol=0)
  if rope:  # the rotation matters: without it the joint outputs differ
    plain, _ = attn(x_BLD, None, mask(same_place))
    assert float(jnp.abs(plain - joint).max()) > 1e-3


def test_the_rotary_table_turns_pairs_with_frame_row_and_column():
  cos, sin = video_dit.rotary_table(2, 3, 16)  # 8 pairs: 2 for frames, 3 rows, 3 columns
  angle_LK = np.arctan2(sin, cos)
  f, r, c = np.meshgrid(np.arange(2), np.arange(3), np.arange(3), indexing="ij")
  np.testing.assert_allclose(angle_LK[:, 0], f.ravel(), atol=1e-6)   # frequency 1
  np.testing.assert_allclose(angle_LK[:, 2], r.ravel(), atol=1e-6)
  np.testing.assert_allclose(angle_LK[:, 5], c.ravel(), atol=1e-6)
  np.testing.assert_allclose(angle_LK[:, 3], r.ravel() * video_dit.ROPE_BASE ** (-1 / 3),
                             atol=1e-6)


@pytest.mark.parametrize("attention", video_dit.ATTENTION)
def test_the_model_maps_clips_to_clips_and_starts_at_zero(attention):
  with eager_sharding():
    model = video_dit.VideoDiT(_cfg(attention), 8, 16, 1, 10, rngs=nnx.Rngs(params=0))
  clips = jax.random.normal(jax.random.key(2), (2, 8, 16, 16, 1))
  t, labels = jnp.array([3, 700]), jnp.array([1, 10])
  out = model(clips, t, labels)
  assert out.shape == clips.shape and out.dtype == jnp.float32
  np.testing.assert_array_equal(out, 0)  # adaLN-zero: every branch and the output start shut
  # Opened, the output depends on every frame: changing frame 7 changes frame 0's output.
  graphdef, state = nnx.split(model)
  state = jax.tree.map(lambda a: a + 0.05 * jax.random.normal(jax.random.key(3), a.shape),
                       state)
  opened = nnx.merge(graphdef, state)
  changed = clips.at[:, 7].add(1.0)
  delta = opened(changed, t, labels) - opened(clips, t, labels)
  assert float(jnp.abs(delta[:, 0]).max()) > 1e-4


def test_a_clip_the_tubelets_cannot_cut_is_refused_by_field():
  with pytest.raises(Exception, match="model.tubelet: 7 frames are not divisible by tubelet=2"):
    video_dit.check_shapes(_cfg("joint"), 7, 16)
  with pytest.raises(Exception, match="model.video_attention: unknown 'axial'"):
    video_dit.check_shapes(_cfg("axial"), 8, 16)
  with pytest.raises(Exception, match="model.video_rope: 3-D rotary positions need an even"):
    video_dit.check_shapes(_cfg("joint", n_heads=8, n_kv_heads=8), 8, 16)
