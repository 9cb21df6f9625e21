"""`scaling sample` on a trained run: greedy equals teacher forcing, seeds reproduce, bad input."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling import cli, runs
from scaling.data import builders, pipeline
from scaling.data.tokenizer import EOS_ID
from scaling.generate import decode


@pytest.fixture
def trained(trained_lm):
  return trained_lm


def test_greedy_decoding_reproduces_teacher_forced_argmax(trained):
  run = runs.load(trained)
  examples = pipeline.load_split(builders.prepare(run.cfg.data), "eval", run.cfg.data.seq_len,
                                 run.cfg.data.loss_on)
  batch = examples.rows(slice(0, 128))
  logits = np.asarray(jax.jit(lambda m, t: m(t))(run.model, jnp.asarray(batch["inputs"])))
  argmax, mask, targets = logits.argmax(-1), batch["loss_mask"] > 0, batch["targets"]
  # Target j predicts input j + 1: the prompt runs through the first answer target's index.
  lengths = mask.argmax(-1) + 1
  prompts = np.where(np.arange(lengths.max()) < lengths[:, None],
                     batch["inputs"][:, :lengths.max()], 0)
  out = decode.generate(run.model, prompts, lengths, max_new_tokens=int(mask.sum(-1).max()),
                        stop_tokens=(EOS_ID,))
  greedy = np.asarray(out.tokens)
  tf_exact = greedy_exact = 0
  for b in range(len(lengths)):
    tf = argmax[b][mask[b]]
    answer = targets[b][mask[b]]
    wrong = np.flatnonzero(tf != answer)
    agree = len(tf) if len(wrong) == 0 else wrong[0] + 1
    # Up to and including the first mistake, greedy decoding is teacher forcing.
    np.testing.assert_array_equal(greedy[b, :agree], tf[:agree])
    tf_exact += len(wrong) == 0
    greedy_exact += np.array_equal(greedy[b, :len(answer)], answer)
  assert tf_exact == greedy_exact
  assert 0 < tf_exact  # the run learned something, so the comparison has teeth


def _sample(capsys, *args):
  assert cli.main(["sample", *args]) == 0
  return capsys.readouterr().out.splitlines()


def test_seed_reproduces_samples(trained, capsys):
  args = [f"--workdir={trained}", "--prompt", "123+45", "--prompt", "7", "-n", "8",
          "--temperature", "1.5", "--top_k", "20"]
  first = _sample(capsys, *args, "--seed", "3")
  again = _sample(capsys, *args, "--seed", "3")
  other = _sample(capsys, *args, "--seed", "4")
  assert len(first) == 16 and first == again
  assert first != other
  assert all(line.startswith("123+45") for line in first[:8])


@pytest.mark.parametrize("args, message", [
    (["--prompt", ""], "empty prompt"),
    (["--prompt", "1" * 40], "the model's context is 16"),
    (["--prompt", "1", "--top_p", "0"], "top_p must be in (0, 1]"),
    (["--prompt", "1", "--top_p", "1.5"], "top_p must be in (0, 1]"),
    (["--prompt", "1", "--temperature", "-1"], "temperature must be >= 0"),
    (["--prompt", "1", "--max_new_tokens", "99"], "max_new_tokens must be in"),
    ([], "give --prompt"),
    (["--prompt", "1", "--continue", "2"], "--continue is for video models"),
])
def test_bad_input_is_one_line_exit_1(trained, capsys, args, message):
  assert cli.main(["sample", f"--workdir={trained}", *args]) == 1
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and message in err, err


def test_run_without_checkpoint(trained, tmp_path, capsys):
  bare = tmp_path / "bare"
  bare.mkdir()
  for name in ("config.json", "tokenizer.model"):
    shutil.copy(os.path.join(trained, name), bare / name)
  assert cli.main(["sample", f"--workdir={bare}", "--prompt", "1+1="]) == 1
  assert capsys.readouterr().err.strip() == f"error: {bare} has no checkpoint to load"
  assert cli.main(["sample", f"--workdir={tmp_path}/missing", "--prompt", "1"]) == 1
  assert "run directory not found" in capsys.readouterr().err


def test_heads_ablation_exact_match_is_greedy_exact_match(trained, tmp_path, capsys):
  """`scaling heads` on the trained run: its teacher-forced exact match (every argmax right)
  is the greedy exact match of `scaling eval`, item by item; every head is scored."""
  from scaling.analysis import heads
  from scaling.evals import scoring, suites
  run = runs.load(trained)
  items = [it for it in suites.arithmetic_items(run.cfg.data, n_per_subset=20)
           if it.task == "arithmetic"]
  rows, mask = heads.answer_rows(run.tokenizer, items, run.cfg.data.seq_len + 1)
  logits, _, _ = heads.probe(run.model, rows)
  greedy = [o.prediction.strip() == it.answer for it, o in
            zip(items, scoring.score(run.model, run.tokenizer, items, batch=16, progress=False))]
  assert heads.exact_match(logits, rows, mask).tolist() == greedy and 0 < sum(greedy) < len(items)

  out = tmp_path / "heads"
  assert cli.main(["heads", f"--workdir={trained}", f"--out={out}", "-n=8",
                   "--heads=0.0,1.3"]) == 0
  assert "EM drop if ablated" in capsys.readouterr().out
  result = json.loads((out / "heads.json").read_text())
  assert np.shape(result["induction_score"]) == np.shape(result["arithmetic_ablation"]["drop"])
  assert np.shape(result["induction_score"]) == (run.cfg.model.n_layers, run.cfg.model.n_heads)
  assert (out / "attention_patterns.png").exists() and (out / "head_scores.png").exists()
  operand = np.asarray(result["arithmetic_ablation"]["operand_attention"])
  assert operand.shape == np.shape(result["induction_score"]) and (0 <= operand).all()
  assert (operand <= 1 + 1e-6).all()
  # The operand digits each answer digit needs, by place: "123+45=" -> 168 (or 861
  # reversed), in the rows' layout (BOS first).
  item = suites.EvalItem("123+45=", "168", "arithmetic", "+3d")
  assert heads.operand_digit_positions(run.tokenizer, item, reverse=False) == [
      (7, [1]), (8, [2, 5]), (9, [3, 6])]
  reversed_item = suites.EvalItem("123+45=", "861", "arithmetic", "+3d")
  assert heads.operand_digit_positions(run.tokenizer, reversed_item, reverse=True) == [
      (7, [3, 6]), (8, [2, 5]), (9, [1])]
  # A head that looks only at those digits scores 1; uniform attention, its baseline.
  targets = [heads.operand_digit_positions(run.tokenizer, item, reverse=False)]
  built = np.zeros((1, 1, 2, 11, 11))
  built[0, 0, 1] = np.tril(np.ones((11, 11))) / np.arange(1, 12)[:, None]
  for query, keys in targets[0]:
    built[0, 0, 0, query, keys] = 1 / len(keys)
  attention, uniform = heads.operand_attention(built, targets)
  np.testing.assert_allclose(attention, [[1.0, uniform]])
  assert uniform == pytest.approx(np.mean([1 / 8, 2 / 9, 2 / 10]))
  assert cli.main(["heads", f"--workdir={trained}", f"--out={out}", "--heads=5.0"]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("error: --heads: 5.0 is out of range"), err
