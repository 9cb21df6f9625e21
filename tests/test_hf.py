"""`scaling export`: every exportable variant's HF model computes our logits and greedy
continuations, its tokenizer encodes as ours, and lm-evaluation-harness on the exported
model scores the toolkit's suites exactly as `scaling eval` does."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from transformers import AutoModelForCausalLM, AutoTokenizer

from scaling import cli, config as config_lib, runs
from scaling.data import tokenizer as tokenizer_lib
from scaling.data.tokenizer import BOS_ID, EOS_ID
from scaling.evals import suites
from scaling.families import family_for
from scaling.generate import decode
from scaling.interop import export, hf_tokenizer
from tests.helpers import DIT_CONFIG, LM_CONFIG, ROOT, tiny_config

VARIANTS = {
    "gelu-tied-mha": ("model.mlp=gelu", "model.n_kv_heads=4"),
    "swiglu-untied-gqa": ("model.mlp=swiglu", "model.tie_embeddings=False"),
    "swiglu-mup": ("model.mlp=swiglu", "model.tie_embeddings=False",
                   "model.parametrization=mup", "model.base_width=16"),
    "gelu-mup-gqa": ("model.mlp=gelu", "model.tie_embeddings=False", "model.n_kv_heads=1",
                     "model.parametrization=mup", "model.base_width=128"),
}


@pytest.fixture(scope="module")
def tokenizer():
  with open(os.path.join(ROOT, "README.md")) as f:
    return tokenizer_lib.train(f.read().splitlines(), 500)


def _random_run(overrides, tokenizer, seed):
  """A model of the variant with every parameter drawn at random (norm scales and a muP
  head included, which start as ones and zeros), as a `runs.Run`."""
  cfg = tiny_config(*overrides, "data.vocab_size=512", "data.seq_len=24")
  family = family_for(cfg)
  model = family.make_model(nnx.Rngs(params=seed))
  graphdef, state = nnx.split(model)
  leaves, treedef = jax.tree.flatten(state)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  leaves = [x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]
  model = nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves))
  return runs.Run("random", cfg, family, model, 0, None, (), {"tokenizer": tokenizer}, "")


def _hf_logits(folder, tokens):
  model = AutoModelForCausalLM.from_pretrained(folder).eval()
  with torch.no_grad():
    return model, model(torch.tensor(np.asarray(tokens), dtype=torch.long)).logits.numpy()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_exported_model_computes_our_logits_and_greedy_continuations(variant, tokenizer,
                                                                     tmp_path):
  run = _random_run(VARIANTS[variant], tokenizer, seed=len(variant))
  export.write_folder(run, str(tmp_path))
  tokens = np.random.default_rng(0).integers(0, 512, (3, 24))
  ours = np.asarray(run.model(jnp.asarray(tokens)))
  hf, theirs = _hf_logits(str(tmp_path), tokens)
  assert np.abs(ours).max() > 1  # the comparison has teeth
  np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=0)
  architecture = json.loads((tmp_path / "config.json").read_text())["architectures"]
  assert architecture == [{"gelu": "ArceeForCausalLM", "swiglu": "LlamaForCausalLM"}[
      run.cfg.model.mlp]]

  # Greedy continuations of a prompt, token for token (no stop token: all 12 are compared).
  prompt = tokens[:1, :8]
  ours = decode.generate(run.model, prompt, [8], max_new_tokens=12).tokens
  theirs = hf.generate(torch.tensor(prompt, dtype=torch.long), max_new_tokens=12,
                       min_new_tokens=12, do_sample=False, eos_token_id=None)[:, 8:]
  np.testing.assert_array_equal(theirs.numpy(), np.asarray(ours))


def test_exported_tokenizer_encodes_and_decodes_as_ours(tokenizer, tmp_path):
  hf_tokenizer.fast_tokenizer(tokenizer).save_pretrained(str(tmp_path))
  hf = AutoTokenizer.from_pretrained(str(tmp_path))
  rng = np.random.default_rng(0)
  alphabet = list("abcdefghij  \t\n0123456789=+-_.,:;()[]<>/") + ["é", "日", "✓", "ß", "😀"]
  texts = ["".join(rng.choice(alphabet, rng.integers(0, 40))) for _ in range(2000)]
  with open(os.path.join(ROOT, "docs", "tokens.md")) as f:
    texts += f.read().splitlines() + ["<s>12+3=</s>", "", " ", "123+456="]
  for text in texts:
    ids = tokenizer.encode(text)
    assert hf(text, add_special_tokens=False)["input_ids"] == ids, text
    assert hf(text)["input_ids"] == [BOS_ID, *ids]  # <s> before a prompt, as scoring does
    assert hf.decode(ids) == tokenizer.decode(ids), text
  assert (hf.bos_token_id, hf.eos_token_id) == (BOS_ID, EOS_ID)
  # The one difference: SentencePiece's space marker, written literally, reads as a space.
  assert tokenizer.decode(tokenizer.encode("a\u2581b")) == "a\u2581b"
  assert hf.decode(hf("a\u2581b", add_special_tokens=False)["input_ids"]) == "a b"


def test_lm_eval_on_the_exported_run_scores_as_scaling_eval(trained_lm, tmp_path, capsys):
  import lm_eval
  from lm_eval.tasks import TaskManager

  out = tmp_path / "hf"
  assert cli.main(["export", f"--workdir={trained_lm}", str(out), "-n=40"]) == 0
  assert capsys.readouterr().out.split() == [str(out)]
  info = json.loads((out / "scaling_export.json").read_text())
  assert info["step"] == 400 and info["architecture"] == "ArceeForCausalLM"

  # `scaling eval` on a copy of the run (it writes eval.json beside the checkpoints).
  workdir = tmp_path / "run"
  shutil.copytree(trained_lm, workdir)
  assert cli.main(["eval", f"--workdir={workdir}", "--suite=arithmetic", "-n=40"]) == 0
  ours = json.loads((workdir / "eval.json").read_text())["tasks"]["arithmetic"]

  tasks = out / "lm_eval_tasks"
  items = [json.loads(line) for line in (tasks / "scaling_arithmetic.jsonl").read_text()
           .splitlines()]
  assert len(items) == ours["all"]["n"]
  results = lm_eval.simple_evaluate(
      model="hf", model_args=f"pretrained={out},add_bos_token=True,dtype=float32",
      tasks=["scaling_arithmetic"], task_manager=TaskManager(include_path=str(tasks)),
      batch_size=1, device="cpu", log_samples=True)
  theirs = results["results"]["scaling_arithmetic"]["exact_match,none"]
  exact = ours["all"]["metrics"]["exact_match"]["mean"]
  assert 0.05 < exact < 0.95  # right and wrong answers both: agreement has teeth
  assert theirs == pytest.approx(exact, abs=1e-12)

  # The exported folder imported back scores as the harness did on it.
  imported = tmp_path / "imported"
  assert cli.main(["import", f"--hf={out}", f"--workdir={imported}"]) == 0
  assert cli.main(["eval", f"--workdir={imported}", "--suite=arithmetic", "-n=40"]) == 0
  again = json.loads((imported / "eval.json").read_text())["tasks"]["arithmetic"]
  assert again["all"]["metrics"]["exact_match"]["mean"] == pytest.approx(theirs, abs=1e-12)

  # Item by item, the harness's greedy answer is ours.
  run = runs.load(trained_lm)
  from scaling.evals import scoring
  answers = scoring.greedy_answers(
      run.model, run.tokenizer, [it["prompt"] for it in items],
      [len(ids) + 2 for ids in run.tokenizer.encode_batch([it["answer"] for it in items])],
      batch=64)
  samples = sorted(results["samples"]["scaling_arithmetic"], key=lambda s: s["doc_id"])
  assert [s["filtered_resps"][0].strip() for s in samples] == [a.strip() for a in answers]


def _random_llama(folder, tokenizer, width: int = 64):
  """A LlamaForCausalLM initialised by transformers (norm scales moved off one), saved with
  the toolkit's SentencePiece model."""
  from transformers import LlamaConfig, LlamaForCausalLM
  torch.manual_seed(width)
  config = LlamaConfig(vocab_size=512, hidden_size=width, intermediate_size=96,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                       rope_parameters={"rope_type": "default", "rope_theta": 500.0},
                       bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=0)
  model = LlamaForCausalLM(config).eval()
  with torch.no_grad():
    for p in model.parameters():
      p.add_(0.1 * torch.randn_like(p))
  model.save_pretrained(folder)
  tokenizer.save(str(folder / "tokenizer.model"))
  return model


def test_a_random_llama_imports_and_exports_back_to_the_same_logits(tokenizer, tmp_path,
                                                                  capsys):
  hf = tmp_path / "llama"
  original = _random_llama(hf, tokenizer)

  run_dir = tmp_path / "run"
  assert cli.main(["import", f"--hf={hf}", f"--workdir={run_dir}"]) == 0
  run = runs.load(str(run_dir))
  assert (run.cfg.model.mlp, run.cfg.model.n_kv_heads, run.cfg.model.rope_base) == (
      "swiglu", 2, 500.0)
  tokens = np.random.default_rng(1).integers(0, 512, (2, 20))
  with torch.no_grad():
    theirs = original(torch.tensor(tokens)).logits.numpy()
  np.testing.assert_allclose(np.asarray(run.model(jnp.asarray(tokens))), theirs, atol=1e-4,
                             rtol=0)
  assert cli.main(["export", f"--workdir={run_dir}", str(tmp_path / "back"), "--suite="]) == 0
  _, back = _hf_logits(str(tmp_path / "back"), tokens)
  np.testing.assert_allclose(back, theirs, atol=1e-4, rtol=0)


def test_an_imported_ladder_is_a_sweep_that_collects_like_a_trained_one(tokenizer, tmp_path,
                                                                         capsys):
  from scaling.sweep import results
  counts = {}
  for size, width in (("small", 32), ("large", 64)):
    model = _random_llama(tmp_path / size, tokenizer, width)
    counts[size] = sum(p.numel() for p in model.parameters())
  sweep = tmp_path / "sweep"
  assert cli.main(["import", f"--hf={tmp_path / 'small'}", f"--hf={tmp_path / 'large'}",
                   f"--sweep={sweep}", "--config.data.reverse_answer=False"]) == 0
  run_dirs = capsys.readouterr().out.split()
  assert cli.main(["eval", f"--workdir={run_dirs[0]}", "--suite=arithmetic", "-n=4"]) == 0
  assert cli.main(["sweep", "collect", str(sweep)]) == 0
  rows = {r["size"]: r for r in results.read(str(sweep / "results.jsonl"))}
  assert {size: r["params"] for size, r in rows.items()} == counts  # HF's own count
  assert {r["status"] for r in rows.values()} == {"completed"}
  assert "arithmetic/+3d/exact_match" in rows["small"]["metrics"]
  assert json.loads((sweep / "trials" / f"{os.path.basename(run_dirs[0])}.json")
                    .read_text())["data"]["reverse_answer"] is False


def test_all_checkpoints_write_one_folder_per_kept_step(trained_lm, tmp_path, capsys):
  out = tmp_path / "ladder"
  assert cli.main(["export", f"--workdir={trained_lm}", str(out), "--all_checkpoints",
                   "--suite="]) == 0
  assert sorted(os.listdir(out)) == ["step400"]
  assert (out / "step400" / "model.safetensors").exists()
  assert not (out / "lm_eval_tasks").exists()


def _one_line(capsys, argv):
  assert cli.main(argv) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("error: "), err
  return err[0]


def test_what_cannot_be_exported_is_one_line_and_writes_nothing(trained_lm, tmp_path, capsys):
  out = tmp_path / "out"
  for kind, path in (("dit", DIT_CONFIG), ("gan", os.path.join(ROOT, "configs", "gan",
                                                               "digits.py"))):
    image_run = tmp_path / kind
    image_run.mkdir()
    config_lib.save(config_lib.load(path), str(image_run / "config.json"))
    assert f"'{kind}' run" in _one_line(capsys, ["export", f"--workdir={image_run}", str(out)])

  no_checkpoint = tmp_path / "bare"
  no_checkpoint.mkdir()
  shutil.copy(os.path.join(trained_lm, "config.json"), no_checkpoint)
  assert "no checkpoint" in _one_line(capsys, ["export", f"--workdir={no_checkpoint}",
                                               str(out)])

  attention_only = tmp_path / "attention-only"
  attention_only.mkdir()
  cfg = tiny_config("model.mlp=none")
  config_lib.save(cfg, str(attention_only / "config.json"))
  assert "model.mlp='none'" in _one_line(capsys, ["export", f"--workdir={attention_only}",
                                                  str(out)])

  assert "no checkpoint at step 7" in _one_line(
      capsys, ["export", f"--workdir={trained_lm}", str(out), "--step=7"])
  assert not out.exists()

  taken = tmp_path / "taken"
  taken.mkdir()
  (taken / "keep.txt").write_text("mine")
  assert "not an empty folder" in _one_line(capsys, ["export", f"--workdir={trained_lm}",
                                                     str(taken)])
  assert os.listdir(taken) == ["keep.txt"]
  assert [p for p in os.listdir(tmp_path) if "partial" in p] == []


def test_what_cannot_be_imported_is_one_line_and_writes_nothing(tokenizer, tmp_path, capsys):
  gpt2 = tmp_path / "gpt2"
  gpt2.mkdir()
  (gpt2 / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 64}))
  run_dir = tmp_path / "run"
  assert "a 'gpt2' model" in _one_line(capsys, ["import", f"--hf={gpt2}",
                                                f"--workdir={run_dir}"])
  biased = tmp_path / "biased"
  biased.mkdir()
  (biased / "config.json").write_text(json.dumps({
      "model_type": "llama", "hidden_act": "silu", "attention_bias": True, "vocab_size": 8,
      "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
      "num_attention_heads": 2}))
  assert "attention_bias=True" in _one_line(capsys, ["import", f"--hf={biased}",
                                                     f"--workdir={run_dir}"])
  assert "not found" in _one_line(capsys, ["import", f"--hf={tmp_path / 'nothing'}",
                                           f"--workdir={run_dir}"])
  partial = tmp_path / "partial"
  partial.mkdir()
  (partial / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 8}))
  assert "has no hidden_size" in _one_line(capsys, ["import", f"--hf={partial}",
                                                    f"--workdir={run_dir}"])
  assert not run_dir.exists()
  assert sorted(os.listdir(tmp_path)) == ["biased", "gpt2", "partial"]


def test_tasks_hold_the_suites_items(tmp_path, capsys):
  assert cli.main(["lm-eval-tasks", f"--config={LM_CONFIG}", str(tmp_path), "-n=5"]) == 0
  names = ["scaling_arithmetic", "scaling_letter_string", "scaling_word_analogy"]
  assert capsys.readouterr().out.split() == [str(tmp_path / f"{n}.yaml") for n in names]
  items = suites.build(["arithmetic", "analogy"], config_lib.load(LM_CONFIG).data,
                       n_per_subset=5, task_files=[])
  for name in names:
    rows = [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
    task = name.removeprefix("scaling_")
    assert [(r["prompt"], r["answer"]) for r in rows] == [
        (it.prompt, it.answer) for it in items if it.task == task]
    assert f"test: {json.dumps(str(tmp_path / f'{name}.jsonl'))}" in (
        tmp_path / f"{name}.yaml").read_text()
