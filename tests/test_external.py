"""External benchmark loaders on the real BIG-bench arithmetic and word-analogy files, scored
end to end by the metric functions; malformed files fail with one clear line."""

import collections
import json
import os

import numpy as np
import pytest

from scaling.evals import external, metrics

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
BIGBENCH = os.path.join(DATA, "bigbench_arithmetic")
ANALOGIES = os.path.join(DATA, "google_analogy", "questions-words.txt")

# Examples per subtask, counted in the files (the 1-digit tasks enumerate all operand pairs).
SUBTASK_SIZES = {f"{d}_digit_{op}": (100 if d == 1 else 1000)
                 for d in range(1, 6)
                 for op in ("addition", "subtraction", "multiplication")}
SUBTASK_SIZES.update({"1_digit_division": 23, "2_digit_division": 200,
                      "3_digit_division": 500, "4_digit_division": 1000,
                      "5_digit_division": 1000})
SECTION_SIZES = {
    "capital-common-countries": 506, "capital-world": 4524, "currency": 866,
    "city-in-state": 2467, "family": 506, "gram1-adjective-to-adverb": 992,
    "gram2-opposite": 812, "gram3-comparative": 1332, "gram4-superlative": 1122,
    "gram5-present-participle": 1056, "gram6-nationality-adjective": 1599,
    "gram7-past-tense": 1560, "gram8-plural": 1332, "gram9-plural-verbs": 870}


@pytest.fixture(scope="module")
def arithmetic():
  if not os.path.isdir(BIGBENCH):
    pytest.skip(reason=f"BIG-bench arithmetic tasks not found at {BIGBENCH}")
  return external.load_bigbench_tasks(BIGBENCH)


@pytest.fixture(scope="module")
def analogies():
  if not os.path.exists(ANALOGIES):
    pytest.skip(reason=f"word-analogy test set not found at {ANALOGIES}")
  return external.load_word_analogies(ANALOGIES)


def test_all_arithmetic_subtasks_load(arithmetic):
  assert {t.name: len(t.examples) for t in arithmetic} == SUBTASK_SIZES
  assert sum(len(t.examples) for t in arithmetic) == 15_023
  for task in arithmetic:
    assert task.metrics == ["exact_str_match", "multiple_choice_grade"]
    assert task.preferred_score == "exact_str_match"
    assert task.output_regex == "[-+]?\\d+"
    for ex in task.examples:
      assert len(ex.targets) == 1 and 5 <= len(ex.choices) <= 7
      assert ex.choices[ex.correct_index] == ex.targets[0]
      assert sorted(ex.choice_scores) == [0.0] * (len(ex.choices) - 1) + [1.0]
  first = arithmetic[0]
  assert first.name == "1_digit_addition"
  assert first.prompt(first.examples[0]) == "\nQ: What is 0 plus 0?\nA: "


def test_parent_task_has_no_examples_of_its_own():
  path = os.path.join(BIGBENCH, "task.json")
  if not os.path.exists(path):
    pytest.skip(reason=f"{path} not found")
  with pytest.raises(ValueError, match="no 'examples' list.*load_bigbench_tasks"):
    external.load_bigbench_task(path)


def test_arithmetic_scored_end_to_end(arithmetic):
  examples = [ex for task in arithmetic for ex in task.examples]
  oracle = [metrics.exact_match(ex.targets[0], ex.targets[0]) for ex in examples]
  assert metrics.summarize(oracle)["mean"] == 1.0
  # Off by one: never exactly right, and the units digit is always wrong.
  off = [str(int(ex.targets[0]) + 1) for ex in examples]
  assert np.mean([metrics.exact_match(p, ex.targets[0]) for p, ex in zip(off, examples)]) == 0
  assert metrics.per_digit_accuracy(off, [ex.targets[0] for ex in examples])[0] == 0.0

  # Multiple choice: scoring each choice by its target score is always right; random
  # scores are right about as often as chance.
  assert all(metrics.multiple_choice_accuracy(ex.choice_scores, ex.correct_index) == 1.0
             for ex in examples)
  assert all(metrics.multiple_choice_grade(ex.choice_scores, ex.choice_scores) == 1.0
             for ex in examples)
  rng = np.random.default_rng(0)
  guesses = [metrics.multiple_choice_accuracy(rng.normal(size=len(ex.choices)),
                                              ex.correct_index) for ex in examples]
  chance = metrics.chance_multiple_choice([len(ex.choices) for ex in examples])
  assert abs(np.mean(guesses) - chance) < 0.02
  uniform = [metrics.brier_score(metrics.choice_probs(np.zeros(len(ex.choices))),
                                 ex.correct_index) for ex in examples]
  assert np.mean(uniform) == pytest.approx(
      metrics.chance_brier([len(ex.choices) for ex in examples]))


def test_word_analogies_load(analogies):
  assert len(analogies) == 19_544
  assert collections.Counter(i.type for i in analogies) == SECTION_SIZES
  assert collections.Counter(i.level for i in analogies) == {"semantic": 8869,
                                                             "syntactic": 10675}
  first = analogies[0]
  assert (first.prompt, first.answer) == ("Athens : Greece :: Baghdad :", " Iraq")
  assert first.task == "google_analogy"


def test_word_analogies_scored_end_to_end(analogies):
  oracle = [metrics.exact_match(i.answer, i.answer) for i in analogies]
  copy_c = [metrics.exact_match(i.prompt.split()[-2], i.answer) for i in analogies]
  assert metrics.summarize(oracle)["mean"] == 1.0
  assert np.mean(copy_c) == 0.0
  by_section = collections.defaultdict(list)
  for item, score in zip(analogies, oracle):
    by_section[item.type].append(score)
  assert len(by_section) == 14


def _write(tmp_path, text, name="task.json"):
  path = tmp_path / name
  path.write_text(text)
  return str(path)


def test_malformed_json_is_a_clear_error(tmp_path):
  path = _write(tmp_path, '{"name": "broken", "examples": [')
  with pytest.raises(ValueError, match="task.json: not valid JSON") as e:
    external.load_bigbench_task(path)
  assert "\n" not in str(e.value) and path in str(e.value)


@pytest.mark.parametrize("task, message", [
    ({"name": "t"}, "no 'examples' list"),
    ({"name": "t", "examples": []}, "no 'examples' list"),
    ({"examples": [{"input": "a", "target": "b"}, {"target": "c"}]},
     "example 1 has no 'input' string"),
    ({"examples": [{"input": "a"}]}, "example 0 has neither 'target' nor 'target_scores'"),
    ({"examples": [{"input": "a", "target": 3}]}, "'target' must be a string"),
    ({"examples": [{"input": "a", "target_scores": {"x": "high"}}]}, "'target_scores' must"),
    ([1, 2], "expected a JSON object"),
])
def test_malformed_task_is_a_clear_error(tmp_path, task, message):
  path = _write(tmp_path, json.dumps(task))
  with pytest.raises(ValueError, match=message) as e:
    external.load_bigbench_task(path)
  assert str(e.value).startswith(path)


def test_missing_file_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match="no such file"):
    external.load_bigbench_task(str(tmp_path / "nope.json"))
  with pytest.raises(ValueError, match="no such file"):
    external.load_word_analogies(str(tmp_path / "nope.txt"))


def test_targets_from_lists_and_scores(tmp_path):
  _write(tmp_path, json.dumps({
      "name": "t", "metrics": ["exact_str_match"], "example_input_prefix": "In: ",
      "examples": [{"input": "a", "target": ["b", "B"]},
                   {"input": "c", "target_scores": {"d": 0.0, "e": 1.0, "f": 1.0}}]}))
  task = external.load_bigbench_task(str(tmp_path))  # a folder holding task.json works too
  assert task.examples[0] == external.Example("a", ["b", "B"])
  assert task.examples[1].targets == ["e", "f"] and task.examples[1].correct_index == 1
  assert task.preferred_score is None and task.prompt(task.examples[0]) == "In: a\nA: "


def test_malformed_analogy_line(tmp_path):
  path = _write(tmp_path, ": family\nboy girl brother sister\nking queen man\n", "q.txt")
  with pytest.raises(ValueError, match=r"q.txt:3: expected"):
    external.load_word_analogies(path)
  path = _write(tmp_path, "boy girl brother sister\n", "q.txt")
  with pytest.raises(ValueError, match=r"q.txt:1: expected"):
    external.load_word_analogies(path)
