"""`scaling import`: a Llama-architecture Hugging Face checkpoint as a run directory that
`scaling eval`, `sample` and `heads` read like the toolkit's own.

Reads `config.json`, the safetensors weights and a SentencePiece `tokenizer.model` whose
<s> and </s> are ids 1 and 2, as the toolkit's are. The run holds one checkpoint, at step
0, with the parameters only. A folder `scaling export` wrote carries the run's own config
(`scaling_config.json`), so the imported run scores the same items; any other gets the
base config's data section, which `--config.data.*` overrides change.
"""

from __future__ import annotations

import glob
import os
import shutil

import numpy as np

from scaling import config as config_lib
from scaling import files
from scaling.data.tokenizer import BOS_ID, EOS_ID, Tokenizer
from scaling.errors import UserError

MODEL_TYPES = {"llama": "swiglu", "arcee": "gelu"}
ACTIVATIONS = {"llama": ("silu",), "arcee": ("gelu_pytorch_tanh",)}


def _hf_config(path: str) -> dict:
  config = files.read_json(os.path.join(path, "config.json"))
  if not isinstance(config, dict):
    raise UserError(f"{path} is not a Hugging Face model folder (no config.json)")
  return config


def _refuse(field: str, value, why: str):
  raise UserError(f"cannot import: config.json's {field}={value!r} {why}")


def toolkit_config(path: str, overrides=()):
  """The run config of the HF model at `path`, after checking the toolkit computes the
  same function; one `UserError` line naming the field otherwise."""
  from scaling.families import lm
  hf = _hf_config(path)
  model_type = hf.get("model_type")
  if model_type not in MODEL_TYPES:
    raise UserError(f"cannot import {path}: a {model_type!r} model; scaling import reads "
                    f"Llama-architecture models ({', '.join(MODEL_TYPES)})")
  for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
              "num_attention_heads"):
    if not isinstance(hf.get(key), int):
      raise UserError(f"cannot import {path}: its config.json has no {key}")
  if hf.get("hidden_act") not in ACTIVATIONS[model_type]:
    _refuse("hidden_act", hf.get("hidden_act"), f"is not {ACTIVATIONS[model_type][0]}")
  for field in ("attention_bias", "mlp_bias"):
    if hf.get(field):
      _refuse(field, hf[field], "(the toolkit's layers have no biases)")
  if hf.get("pretraining_tp", 1) != 1:
    _refuse("pretraining_tp", hf["pretraining_tp"], "(only 1 computes exact logits)")
  rope = hf.get("rope_parameters") or {"rope_type": "default",
                                       "rope_theta": hf.get("rope_theta", 10_000.0)}
  if hf.get("rope_scaling") or rope.get("rope_type", "default") != "default":
    _refuse("rope_parameters", rope, "(the toolkit has plain rotary embeddings)")
  D, H = hf["hidden_size"], hf["num_attention_heads"]
  if hf.get("head_dim") not in (None, D // H) or D % H:
    _refuse("head_dim", hf.get("head_dim"), "is not hidden_size / num_attention_heads")
  if (hf.get("bos_token_id"), hf.get("eos_token_id")) != (BOS_ID, EOS_ID):
    _refuse("bos_token_id, eos_token_id", (hf.get("bos_token_id"), hf.get("eos_token_id")),
            f"differ from the toolkit's reserved ids ({BOS_ID}, {EOS_ID})")

  saved = os.path.join(path, "scaling_config.json")
  cfg = config_lib.from_json(saved) if os.path.exists(saved) else lm.base_config()
  with cfg.unlocked():
    cfg.name = f"hf-{os.path.basename(os.path.normpath(path))}"
    cfg.model.update(
        d_model=D, n_layers=hf["num_hidden_layers"], n_heads=H,
        n_kv_heads=hf.get("num_key_value_heads") or H, d_ff=hf["intermediate_size"],
        mlp=MODEL_TYPES[model_type], tie_embeddings=bool(hf.get("tie_word_embeddings")),
        rope_base=float(rope["rope_theta"]), norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
        # An exported muP model's multipliers are folded into its weights.
        parametrization="sp")
    cfg.data.vocab_size = hf["vocab_size"]
  config_lib.apply_overrides(cfg, overrides)
  return cfg


def _tokenizer(path: str) -> Tokenizer:
  spm_path = os.path.join(path, "tokenizer.model")
  if not os.path.exists(spm_path):
    raise UserError(f"cannot import {path}: it has no SentencePiece tokenizer.model (a "
                    "tokenizer.json alone is not converted)")
  try:
    tokenizer = Tokenizer.load(spm_path)
  except (OSError, RuntimeError) as e:
    raise UserError(f"cannot import {path}: tokenizer.model is not a SentencePiece model "
                    f"({e})") from None
  ids = (tokenizer.piece_id("<s>"), tokenizer.piece_id("</s>"))
  if ids != (BOS_ID, EOS_ID):
    raise UserError(f"cannot import {path}: its tokenizer has <s>, </s> = {ids}; the "
                    f"toolkit's are {BOS_ID}, {EOS_ID}")
  return tokenizer


def _tensors(path: str) -> dict[str, np.ndarray]:
  from safetensors.numpy import load_file
  shards = sorted(glob.glob(os.path.join(path, "*.safetensors")))
  if not shards:
    raise UserError(f"cannot import {path}: no *.safetensors weights (save with "
                    "safe_serialization, the default)")
  tensors = {}
  for shard in shards:
    tensors.update({k: v.astype(np.float32) for k, v in load_file(shard).items()})
  return tensors


def params_from_tensors(tensors: dict[str, np.ndarray], model_cfg) -> dict:
  """HF's names back to the toolkit's stacked parameters (the inverse of
  `hf_model.hf_tensors` for a standard-parametrization model)."""
  D, H, G = model_cfg.d_model, model_cfg.n_heads, model_cfg.n_kv_heads
  K = D // H
  layer = lambda name: np.stack([tensors[f"model.layers.{i}.{name}"]
                                 for i in range(model_cfg.n_layers)])
  blocks = {
      "attn_norm": {"scale": layer("input_layernorm.weight")},
      "attn": {"q_DHK": layer("self_attn.q_proj.weight").transpose(0, 2, 1).reshape(-1, D, H, K),
               "k_DHK": layer("self_attn.k_proj.weight").transpose(0, 2, 1).reshape(-1, D, G, K),
               "v_DHK": layer("self_attn.v_proj.weight").transpose(0, 2, 1).reshape(-1, D, G, K),
               "o_HKD": layer("self_attn.o_proj.weight").transpose(0, 2, 1).reshape(-1, H, K, D)},
      "mlp_norm": {"scale": layer("post_attention_layernorm.weight")},
      "mlp": {"wi_DF": layer("mlp.up_proj.weight").transpose(0, 2, 1),
              "wo_FD": layer("mlp.down_proj.weight").transpose(0, 2, 1)},
  }
  if model_cfg.mlp == "swiglu":
    blocks["mlp"]["wg_DF"] = layer("mlp.gate_proj.weight").transpose(0, 2, 1)
  params = {"embed_VD": tensors["model.embed_tokens.weight"], "blocks": blocks,
            "final_norm": {"scale": tensors["model.norm.weight"]}}
  if not model_cfg.tie_embeddings:
    params["head_DV"] = tensors["lm_head.weight"].T
  return params


def _model(cfg, family, tensors):
  """The toolkit's model of `cfg` holding `tensors`."""
  import jax
  from flax import nnx
  model = nnx.eval_shape(lambda: family.make_model(nnx.Rngs(params=0)))
  graphdef, state = nnx.split(model)
  values = params_from_tensors(tensors, cfg.model)
  flat = nnx.to_flat_state(state)
  for key, variable in flat:
    value = values
    for part in key:
      value = value[part]
    if value.shape != variable.value.shape:
      raise UserError(f"cannot import: weight {'.'.join(map(str, key))} has shape "
                      f"{value.shape}, the config says {variable.value.shape}")
    variable.value = jax.numpy.asarray(value)
  return nnx.merge(graphdef, nnx.from_flat_state(flat))


def import_hf(path: str, workdir: str, overrides=()) -> str:
  """Writes the run directory `workdir` (new or empty) from the HF folder `path`."""
  import orbax.checkpoint as ocp
  from flax import nnx
  from scaling.families import family_for
  from scaling.rundir import RunDir
  if not os.path.isdir(path):
    raise UserError(f"Hugging Face model folder not found: {path}")
  if os.path.exists(workdir) and (not os.path.isdir(workdir) or os.listdir(workdir)):
    raise UserError(f"{workdir} exists and is not an empty folder; choose a new one")
  cfg = toolkit_config(path, overrides)
  family = family_for(cfg)
  family.check()
  tokenizer = _tokenizer(path)
  model = _model(cfg, family, _tensors(path))
  staging = f"{os.path.abspath(workdir)}.partial-{os.getpid()}"
  shutil.rmtree(staging, ignore_errors=True)
  try:
    run_dir = RunDir(staging)
    os.makedirs(staging)
    config_lib.save(cfg, run_dir.config)
    tokenizer.save(run_dir.tokenizer)
    with ocp.CheckpointManager(os.path.abspath(run_dir.checkpoints),
                               item_names=("state",)) as manager:
      manager.save(0, args=ocp.args.Composite(
          state=ocp.args.StandardSave({"params": nnx.state(model, nnx.Param)})))
      manager.wait_until_finished()
    files.write_json(os.path.join(staging, "imported.json"), {
        "from": os.path.abspath(path), "config": _hf_config(path)})
    if os.path.isdir(workdir):
      os.rmdir(workdir)
    os.rename(staging, workdir)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return workdir


def import_ladder(paths: list[str], directory: str, overrides=()) -> list[str]:
  """Imports each folder as a completed trial of a sweep in `directory` (new or empty),
  named by its folder, so `scaling sweep collect` and `scaling plot` read a published
  ladder as if it had been trained here; returns the run directories."""
  from scaling.families import family_for, lm
  from scaling.rundir import RunDir
  from scaling.sweep import spec
  from scaling.sweep import status as status_lib
  from scaling.sweep.layout import SweepDir
  if os.path.exists(directory) and (not os.path.isdir(directory) or os.listdir(directory)):
    raise UserError(f"{directory} exists and is not an empty folder; choose a new one")
  sizes = [os.path.basename(os.path.normpath(p)) for p in paths]
  if len(set(sizes)) < len(sizes):
    raise UserError(f"the folders' names must differ (they name the sizes): {sizes}")
  configs = [toolkit_config(p, overrides) for p in paths]  # every refusal before writing
  layout = SweepDir(directory)
  trials = [spec.Trial(config_lib.run_name(cfg, lm.base_config()), size, 0, cfg)
            for size, cfg in zip(sizes, configs)]
  status = status_lib.Status(layout.status)
  written = []
  for path, trial in zip(paths, trials):
    workdir = layout.run(trial.name).path
    import_hf(path, workdir, overrides)
    files.write_json(RunDir(workdir).summary, {
        "step": 0, "params": family_for(trial.cfg).params().as_dict(), "imported": True})
    status.set(trial.name, "completed")
    written.append(workdir)
  sweep = spec.base_sweep()
  sweep.name = os.path.basename(os.path.normpath(directory))
  sweep.sizes = tuple(sizes)
  spec.save(sweep, trials, layout)
  return written
