"""The code suite: pass@k and execution-filtered pass@1 from sampled programs, failure
counts, `scaling eval --suite code` end to end, seeded sampling, the temperature study, and
no held-out program in a mixture's training records."""

import itertools
import json
import os

import jax
import numpy as np
import pytest

from scaling import cli, exits
from scaling.errors import ConfigError
from scaling.data.tasks import interpreter as interp
from scaling.data.tasks import mixture, programs
from scaling.evals import code
from scaling.families import family_for
from scaling.sweep import results
from scaling.train import loop
from tests.helpers import tiny_config

PROGRAM_DATA = ("data.mixture=(('program', 0.8), ('arithmetic', 0.2))", "data.min_digits=1",
                "data.max_digits=2", "data.program_max_chars=40", "data.seq_len=41",
                "data.vocab_size=384", "data.eval_fraction=0.1")

# Visible 3 -> 7 and 5 -> 11; hidden 0 -> 1, 1 -> 3, 2 -> 5 and 9 -> 19.
PROBLEM = programs.Problem("x*2+1", "x*2+1", 1, (((3,), 7), ((5,), 11)),
                           (((0,), 1), ((1,), 3), ((2,), 5), ((9,), 19)), "depth2", "")
RIGHT = "x*2+1"
WRONG_ON_VISIBLE = "x==3?0:x*2+1"  # every hidden test right, one visible example wrong
WRONG_ON_HIDDEN = "x>4?11:x*2+1"  # every visible example right, 9 -> 11


@pytest.fixture(scope="module")
def program_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("programs"))
  cfg = tiny_config(*PROGRAM_DATA, "data.num_train=2000", "data.num_eval=32",
                    "train.steps=40", "train.learning_rate=0.01", "train.log_every=20",
                    "checkpoint.every_steps=0")
  # One device: the test is of the trained model, not of its layout.
  assert loop.train(cfg, workdir, devices=jax.devices()[:1]) == exits.OK
  return workdir


def _scores(texts):
  return tuple(programs.score(PROBLEM, t) for t in texts)


def _brute_pass_at(scores, k):
  subsets = list(itertools.combinations(scores, k))
  return sum(any(s.passed for s in subset) for subset in subsets) / len(subsets)


def _scored(texts, greedy=RIGHT, problem=PROBLEM):
  return code.Scored(problem, greedy, programs.score(problem, greedy), np.log([0.5, 0.5]),
                     tuple(texts), tuple(programs.score(problem, t) for t in texts))


def test_pass_at_k_of_samples_and_of_a_subset_equal_enumeration():
  rng = np.random.default_rng(0)
  pool = [RIGHT, WRONG_ON_HIDDEN, WRONG_ON_VISIBLE, "x*2", "x*"]
  problems_samples = [[pool[i] for i in rng.integers(0, len(pool), 10)] for _ in range(6)]
  problems_samples.append([RIGHT] * 10)
  problems_samples.append(["x*2"] * 10)
  per_problem = []
  for texts in problems_samples:
    scores = _scores(texts)
    got = code.pass_at(scores)
    assert set(got) == {"pass_at_1", "pass_at_5", "pass_at_10"}
    brute = {f"pass_at_{k}": _brute_pass_at(scores, k) for k in (1, 5, 10)}
    assert got == pytest.approx(brute, abs=1e-12)
    per_problem.append(brute)
  assert set(code.pass_at(_scores([RIGHT] * 4))) == {"pass_at_1"}  # only k <= samples
  # The suite's score is the mean over problems, with an interval around it.
  summary = code.summarize([_scored(t) for t in problems_samples], n_resamples=200)
  for k in (1, 5, 10):
    m = summary["program"]["all"]["metrics"][f"pass_at_{k}"]
    assert m["mean"] == pytest.approx(np.mean([p[f"pass_at_{k}"] for p in per_problem]))
    assert m["ci_low"] <= m["mean"] <= m["ci_high"] and m["n"] == len(problems_samples)


def test_execution_filter_never_picks_a_sample_wrong_on_the_visible_examples():
  assert code.filtered_pass_at_1(_scores([WRONG_ON_VISIBLE, RIGHT])) == 1.0
  # Right on every hidden test, but the visible examples rule it out.
  assert code.filtered_pass_at_1(_scores([WRONG_ON_VISIBLE])) == 0.0
  # The first sample right on the visible examples is the one scored on the hidden tests.
  assert code.filtered_pass_at_1(_scores([WRONG_ON_HIDDEN, RIGHT])) == 0.0
  assert code.filtered_pass_at_1(_scores(["x*", RIGHT, WRONG_ON_HIDDEN])) == 1.0
  assert code.filtered_pass_at_1(()) == 0.0


def test_outcomes_and_greedy_metrics():
  ends = [code.outcome(s) for s in _scores(
      [RIGHT, "x*", "x==3?f(x):x*2+1", "x*2+1+0//(x-9)", "x*2", WRONG_ON_HIDDEN])]
  assert ends == ["passed", "parse_error", "step_limit", "runtime_error", "wrong_output",
                  "wrong_output"]
  row = code.problem_metrics(_scored([RIGHT, "x*"], greedy=WRONG_ON_HIDDEN))
  assert row["exact_match"] == 0.0 and row["hidden_pass_fraction"] == 0.75
  assert row["reference_match"] == 0.0 and row["pass_at_1"] == 0.5
  assert row["answer_logprob"] == pytest.approx(2 * np.log(0.5))
  row = code.problem_metrics(_scored([], greedy="2*x+1"))  # passes, though spelled otherwise
  assert row["exact_match"] == 1.0 and row["reference_match"] == 0.0
  assert "pass_at_1" not in row and "filtered_pass_at_1" not in row
  summary = code.summarize([_scored(["x*", RIGHT, "x*2"], greedy="x*")])["program"]
  assert summary["depth2"]["failures"] == {"passed": 0, "parse_error": 1, "step_limit": 0,
                                           "runtime_error": 0, "wrong_output": 0}
  assert summary["all"]["sample_failures"]["passed"] == 1
  assert sum(summary["all"]["sample_failures"].values()) == 3


def test_code_suite_end_to_end(program_run, capsys):
  assert cli.main(["eval", f"--workdir={program_run}", "--suite=code", "-n=3",
                   "--samples=10", "--temperature=0.8", "--batch=64"]) == 0
  assert "pass_at_1" in capsys.readouterr().out
  with open(os.path.join(program_run, "eval.json")) as f:
    written = json.load(f)
  assert written["flags"] == {"samples": 10, "temperature": 0.8, "top_p": 1.0, "seed": 0}
  subsets = written["tasks"]["program"]
  assert "all" in subsets and set(subsets) - {"all"} <= set(programs.LEVELS)
  assert subsets["all"]["n"] == sum(s["n"] for name, s in subsets.items() if name != "all")
  for name, s in subsets.items():
    assert 0 < s["n"] <= (3 if name != "all" else 12)
    for metric in ("exact_match", "hidden_pass_fraction", "reference_match", "answer_logprob",
                   "predicted_exact_match", "char_accuracy", "pass_at_1", "pass_at_5",
                   "pass_at_10", "filtered_pass_at_1"):
      m = s["metrics"][metric]
      assert m["n"] == s["n"] and m["ci_low"] <= m["mean"] <= m["ci_high"], (name, metric)
    assert sum(s["failures"].values()) == s["n"]
    assert sum(s["sample_failures"].values()) == 10 * s["n"]
  # A sweep's results row names the metrics as every other task's.
  metrics, _ = results._metrics(written["tasks"])
  assert {"program/all/exact_match", "program/all/pass_at_10"} <= set(metrics)


def test_same_seed_same_samples(program_run):
  from scaling import runs
  run = runs.load(program_run)
  problems = code.problems(run.cfg.data, n_per_level=3)
  a = code.draw(run, problems, code.Settings(10, 0.8, 1.0, seed=0), batch=64)
  b = code.draw(run, problems, code.Settings(10, 0.8, 1.0, seed=0), batch=64)
  c = code.draw(run, problems, code.Settings(10, 0.8, 1.0, seed=1), batch=64)
  assert a == b and a != c
  assert [len(s) for s in a] == [10] * len(problems)
  greedy = code.draw(run, problems, code.Settings(10, 0.0, 1.0, seed=0), batch=64)
  assert all(len(set(s)) == 1 for s in greedy)  # temperature 0: one program, repeated


def test_temperature_study_and_figure(program_run, tmp_path):
  from scaling import runs
  from scaling.analysis import code_plots, plots
  run = runs.load(program_run)
  # The settings of the end-to-end test: the sampler is compiled already.
  study = code.temperature_sweep(run, temperatures=(0.8,), top_ps=(1.0,), samples=10,
                                 n_per_level=3, batch=64, progress=False)
  (setting,) = study["settings"]
  assert (setting["temperature"], setting["top_p"]) == (0.8, 1.0)
  assert set(setting["subsets"]["all"]["metrics"]) == {"pass_at_1", "pass_at_10"}
  fake = {"samples": 10, "settings": [
      {"temperature": t, "top_p": p, "subsets": {"all": {"metrics": {
          m: {"mean": v, "ci_low": v / 2, "ci_high": min(1, v * 1.5)}
          for m, v in (("pass_at_1", 0.5 - t / 4), ("pass_at_10", 0.6 + t / 4))}}}}
      for t in (0.0, 0.4, 1.0) for p in (1.0, 0.95)]}
  for data in (study, fake):
    paths = plots.save(code_plots.temperature_figure(data), str(tmp_path), "t")
    assert all(os.path.getsize(p) > 0 for p in paths)


def test_no_held_out_program_is_in_a_mixtures_training_records():
  data = tiny_config(*PROGRAM_DATA).data
  train = [r for r in mixture.train_records(3000, seed=0, params=data) if r.task == "program"]
  assert len(train) > 2000 and {r.subset for r in train} == set(programs.LEVELS)
  held_out = (code.problems(data, n_per_level=200)
              + list(mixture.program_problems("eval", 200, seed=0, params=data)))

  def behaviour(text, arity):
    program = interp.parse(text, arity)
    return tuple(interp.evaluate(program, x).value for x in programs.inputs(arity))

  trained_forms = {interp.canonical(r.answer) for r in train}
  trained_functions = {behaviour(r.answer, 2 if r.question.endswith("f(x,y)=") else 1)
                       for r in train}
  assert not {p.canonical for p in held_out} & trained_forms
  assert not {behaviour(p.answer, p.arity) for p in held_out} & trained_functions


def test_seq_len_too_short_for_programs_is_one_clear_error():
  family_for(tiny_config(*PROGRAM_DATA)).check()
  with pytest.raises(ConfigError, match=r"data\.seq_len.*programs of up to 40 characters"):
    family_for(tiny_config(*PROGRAM_DATA, "data.seq_len=40")).check()
  with pytest.raises(ConfigError, match=r"data\.program_levels"):
    family_for(tiny_config(*PROGRAM_DATA, "data.program_levels=('depth9',)")).check()


@pytest.mark.parametrize("flag, needle", [
    ("--samples=-1", "--samples must be at least 0"),
    ("--temperature=-0.5", "--temperature must be >= 0"),
    ("--top_p=0", "--top_p must be in (0, 1]"),
    ("--seed=-1", "--seed must be at least 0"),
])
def test_bad_code_flags_are_one_line(tmp_path, capsys, flag, needle):
  assert cli.main(["eval", f"--workdir={tmp_path}", "--suite=code", flag]) == 1
  err = capsys.readouterr().err.strip()
  assert err.startswith("error:") and needle in err and "\n" not in err
