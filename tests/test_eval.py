"""`scaling eval`: items from every suite, both metric views with intervals, bad input."""

import json
import os

import jax
import numpy as np
import pytest

from scaling import exits
from scaling import cli
from scaling.data.tasks import arithmetic
from scaling.evals import aggregate, scoring, suites
from scaling.train import loop
from tests.helpers import tiny_config

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
BIGBENCH = os.path.join(SHARED, "bigbench_arithmetic")


@pytest.fixture(scope="module")
def mixture_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("mixture"))
  cfg = tiny_config("data.mixture=(('arithmetic', 0.5), ('letter_string', 0.3), ('word_analogy', 0.2))",
                    "data.seq_len=32", "data.vocab_size=384", "data.min_digits=1",
                    "data.max_digits=2", "data.num_eval=64", "train.steps=200",
                    "train.batch_size=32", "train.learning_rate=0.01", "train.log_every=50",
                    "checkpoint.every_steps=0")
  # One device: the test is of the trained model, not of its layout.
  assert loop.train(cfg, workdir, devices=jax.devices()[:1]) == exits.OK
  return workdir


def test_arithmetic_items_are_held_out_and_stratified():
  cfg = tiny_config("data.ops=('+', '-')", "data.min_digits=1", "data.max_digits=3").data
  items = suites.arithmetic_items(cfg, n_per_subset=200)
  subsets = {(it.task, it.subset) for it in items}
  assert {("arithmetic", "+3d"), ("arithmetic", "-2d"), ("arithmetic_carries", "carries=3")} <= subsets
  for it in items:  # every item is held out from training by construction
    assert arithmetic.in_eval_split(arithmetic.Problem(*_parse(it.prompt)), cfg.eval_fraction)
  assert sum(it.subset == "+3d" for it in items) == 200


def test_generated_suites_are_cached_beside_the_data(tmp_path, monkeypatch):
  cfg = tiny_config(f"data.data_dir={tmp_path}", "data.min_digits=1", "data.max_digits=2").data
  drawn = suites.arithmetic_items(cfg, n_per_subset=20)
  assert suites.generated_items("arithmetic", cfg, 20) == drawn  # drawn, then written
  [path] = (tmp_path / "suites").iterdir()

  def no_draws(*args):
    raise AssertionError("drew items that are cached")
  monkeypatch.setitem(suites.GENERATED, "arithmetic", no_draws)
  assert suites.generated_items("arithmetic", cfg, 20) == drawn  # read back, equal
  # Another size, field or generator is another file; an unreadable one is drawn again.
  monkeypatch.undo()
  assert len(suites.generated_items("arithmetic", cfg, 10)) < len(drawn)
  cfg.reverse_answer = not cfg.reverse_answer
  assert suites.generated_items("arithmetic", cfg, 20) != drawn
  assert len(list((tmp_path / "suites").iterdir())) == 3
  cfg.reverse_answer = not cfg.reverse_answer
  path.write_text("[{\"prompt\": ")
  assert suites.generated_items("arithmetic", cfg, 20) == drawn


def _parse(question):
  body = question[:-1]
  for op in ("+", "-", "*"):
    if op in body[1:]:
      i = body.index(op, 1)
      return int(body[:i]), op, int(body[i + 1:])
  raise ValueError(question)


def test_eval_writes_both_views_with_intervals(mixture_run, capsys):
  assert cli.main(["eval", f"--workdir={mixture_run}", "--suite", "arithmetic,analogy",
                   "-n", "20"]) == 0
  printed = capsys.readouterr().out
  assert "exact_match" in printed and "letter_string" in printed and "+2d" in printed
  with open(os.path.join(mixture_run, "eval.json")) as f:
    result = json.load(f)["tasks"]
  assert {"arithmetic", "arithmetic_carries", "letter_string", "word_analogy"} <= set(result)
  for task, subsets in result.items():
    for subset, s in subsets.items():
      m = s["metrics"]
      for name in ("exact_match", "answer_logprob", "char_accuracy", "predicted_exact_match"):
        assert m[name]["n"] == s["n"] > 0
        assert m[name]["ci_low"] <= m[name]["mean"] <= m[name]["ci_high"], (task, subset, name)
  assert result["arithmetic"]["all"]["chance"]["digit_accuracy"] == 0.1
  # Calibration of the greedy answer's probability against exact match, per subset.
  for subset, s in result["arithmetic"].items():
    ece, cal = s["metrics"]["ece"], s["calibration"]
    assert 0 <= ece["ci_low"] <= ece["ci_high"] <= 1 and ece["n"] == s["n"], subset
    assert sum(b["n"] for b in cal["bins"]) == s["n"] and cal["calibrated_high"] > 0
  # The table: exact match with its interval, then its chance level (a uniform guess of
  # each digit: 1-2 digit answers put it between 1/100 and 1/10); a row with fewer items
  # than -n asked for says why.
  lines = printed.splitlines()
  header = lines[0].split()
  assert header[:6] == ["task", "subset", "n", "exact_match", "chance", "char_accuracy"]
  assert header[-1] == "note"
  rows = {tuple(line.split()[:2]): line for line in lines[2:]}
  one, two = result["arithmetic"]["+1d"], result["arithmetic"]["+2d"]
  assert one["n"] < 20 == two["n"]
  assert 0.01 < one["chance"]["exact_match"] < 0.1
  assert rows[("arithmetic", "+1d")].endswith(
      f"only {one['n']} held-out items drawn: the subset's problem space is small")
  assert rows[("arithmetic", "+2d")].split()[2] == "20"
  assert not rows[("arithmetic", "+2d")].rstrip().endswith("small")
  assert rows[("arithmetic", "all")].endswith("every subset together")
  assert rows[("arithmetic_carries", "carries=1")].endswith("split by their number of carries")


def test_scoring_agrees_with_exact_match_and_logprobs(mixture_run):
  from scaling import runs
  run = runs.load(mixture_run)
  items = suites.arithmetic_items(run.cfg.data, n_per_subset=30)[:40]
  outputs = scoring.score(run.model, run.tokenizer, items, batch=16, progress=False)
  for item, out in zip(items, outputs):
    # A greedy answer that is the target must have been the argmax at every step.
    tokens = run.tokenizer.encode(item.answer)
    assert len(out.answer_token_logprobs) == len(tokens) + 1
    assert (out.answer_token_logprobs <= 0).all()
    assert out.prediction_logprob <= 0
    if out.prediction.strip() == item.answer:
      assert np.exp(out.answer_token_logprobs).min() > 1 / run.cfg.data.vocab_size
      # The greedy answer's probability (from the cached decode) is the teacher-forced
      # probability of the same tokens (a full forward pass).
      np.testing.assert_allclose(out.prediction_logprob, out.answer_token_logprobs.sum(),
                                 atol=1e-4)


@pytest.mark.skipif(not os.path.isdir(BIGBENCH), reason="shared BIG-bench data not present")
def test_bigbench_task_is_scored_with_choices(mixture_run):
  items = suites.bigbench_items(os.path.join(BIGBENCH, "1_digit_addition"))
  assert len(items) == 100 and all(it.choices for it in items)
  from scaling import runs
  run = runs.load(mixture_run)
  outputs = scoring.score(run.model, run.tokenizer, items[:24], batch=8, progress=False)
  result = aggregate.aggregate(items[:24], outputs, n_resamples=100)
  s = result["bigbench/1_digit_addition"]["all"]
  assert s["n"] == 24 and 0 <= s["metrics"]["mc_accuracy"]["mean"] <= 1
  assert 0.1 < s["chance"]["mc_accuracy"] < 0.5


@pytest.mark.parametrize("args, message", [
    (["--suite", "poetry"], "unknown suite 'poetry'"),
    (["--task", "/nonexistent/task.json"], "task file not found"),
    (["--suite", ""], "nothing to evaluate"),
])
def test_bad_input_is_one_line_exit_1(mixture_run, capsys, args, message):
  assert cli.main(["eval", f"--workdir={mixture_run}", *args]) == 1
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and message in err, err


def test_malformed_task_and_missing_run(mixture_run, tmp_path, capsys):
  bad = tmp_path / "task.json"
  bad.write_text('{"examples": [ {"input": "1+1", ')
  assert cli.main(["eval", f"--workdir={mixture_run}", "--task", str(bad)]) == 1
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "not valid JSON" in err and str(bad) in err, err
  assert cli.main(["eval", f"--workdir={tmp_path}/nope", "--suite", "arithmetic"]) == 1
  assert "run directory not found" in capsys.readouterr().err
