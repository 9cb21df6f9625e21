"""muP: per-parameter learning rates follow the logical axes, muP equals SP at the base
width, and the coordinate check shows flat activations under muP, growing ones under SP."""

import pytest
from flax import nnx

from scaling import optim
from scaling.families import family_for
from scaling.train import coords
from tests.helpers import tiny_config, tiny_dit


def _scales(cfg):
  family = family_for(cfg)
  abstract = nnx.state(nnx.eval_shape(family.make_model), nnx.Param)
  return optim.lr_scales(abstract, cfg.model)


def test_learning_rate_rule_per_parameter():
  cfg = tiny_config("model.parametrization='mup'", "model.base_width=16", "model.d_model=64",
                    "model.n_heads=4", "model.n_kv_heads=4", "model.d_ff=256",
                    "model.tie_embeddings=False")
  scales = _scales(cfg)
  hidden = {("blocks", "attn", w) for w in ("q_DHK", "k_DHK", "v_DHK", "o_HKD")}
  hidden |= {("blocks", "mlp", "wi_DF"), ("blocks", "mlp", "wo_FD")}
  for path, factor in scales.items():
    assert factor == (0.25 if path in hidden else 1.0), (path, factor)
  assert {p for p, f in scales.items() if f == 1.0} == {
      ("embed_VD",), ("head_DV",), ("final_norm", "scale"), ("blocks", "attn_norm", "scale"),
      ("blocks", "mlp_norm", "scale")}
  dit = _scales(tiny_dit("model.parametrization='mup'", "model.base_width=16"))
  assert dit[("time_out_DD",)] == dit[("blocks", "ada", "w_DND")] == 0.5  # width x width
  assert dit[("time_in_TD",)] == dit[("patch_PD",)] == dit[("out_DP",)] == 1.0
  sp = tiny_config()
  assert _scales(sp) is None


@pytest.mark.parametrize("make", [tiny_config, tiny_dit], ids=["lm", "dit"])
def test_at_the_base_width_only_the_attention_scale_differs(make):
  from scaling.models import layers
  mup = make("model.d_model=32", "model.parametrization='mup'", "model.base_width=32")
  assert set(_scales(mup).values()) == {1.0}
  assert layers.readout_multiplier(mup.model) == 1.0
  head_dim = 32 // mup.model.n_heads
  assert layers.score_scale(mup.model) == 1 / head_dim
  assert family_for(make("model.d_model=32")).params() == family_for(mup).params()


@pytest.fixture(scope="module")
def checks():
  out = {}
  for name, make in (("lm", lambda *o: tiny_config("model.tie_embeddings=False", *o)),
                     ("dit", tiny_dit)):
    for parametrization in ("sp", "mup"):
      cfg = make("train.learning_rate=0.02", "train.warmup_steps=0",
                 "train.schedule='constant'", f"model.parametrization='{parametrization}'",
                 "model.base_width=32")
      out[name, parametrization] = coords.coordinate_check(cfg, (32, 256), steps=5)
  return out


@pytest.mark.slow
@pytest.mark.parametrize("name, output", [("lm", "logits"), ("dit", "output")])
def test_coordinate_check(checks, name, output):
  mup, sp = coords.growth(checks[name, "mup"]), coords.growth(checks[name, "sp"])
  for layer, factor in mup.items():
    assert 0.5 <= factor <= 2.0, (layer, factor)  # flat within 2x over 8x of width
  # The output grows several-fold under SP (the LM's logits 3.5x, the DiT's output 41x
  # over 8x of width; muP's 1.07x for both).
  assert sp[output] > 2.5, sp
