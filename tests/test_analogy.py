"""Analogy generators: correct answers, disjoint splits, coverage, determinism; Webb et al.'s
published problems in the same format and scored by the same metric."""

import collections
import hashlib
import os
import re

import numpy as np
import pytest

from scaling.data.tasks import analogy
from scaling.evals import metrics

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
WEBB = os.path.join(DATA, "letter_string_webb", "problems.json")


def letter_items(split="eval", n=2000, seed=0, **kw):
  return list(analogy.generate(split, n, seed=seed, eval_fraction=0.5, **kw))


def word_items(split="eval", n=1000, seed=0, **kw):
  return list(analogy.generate(split, n, seed=seed, eval_fraction=0.5, task="word_analogy",
                               **kw))


@pytest.fixture(scope="module")
def webb():
  if not os.path.exists(WEBB):
    pytest.skip(reason=f"Webb et al.'s problems not found at {WEBB}")
  return analogy.load_webb(WEBB)


def test_prompt_format():
  item = analogy.Item(analogy.letter_prompt(list("abcd"), list("abce"), list("ijkl")),
                      analogy.letter_answer(list("ijkm")), "letter_string", "successor",
                      "basic")
  assert item.text == "[a b c d] [a b c e] ; [i j k l] [i j k m]"
  assert analogy.parse_letter_prompt(item.prompt) == (list("abcd"), list("abce"), list("ijkl"))
  assert analogy.parse_letter_answer("i j k m] [x y") == list("ijkm")


@pytest.mark.parametrize("transformation, level, c, d", [
    ("successor", "basic", "i j k l", "i j k m"),
    ("predecessor", "basic", "j k l m", "i k l m"),
    ("extend", "basic", "i j k l", "i j k l m"),
    ("remove_redundant", "basic", "i j k k l", "i j k l"),
    ("fix_alphabet", "basic", "i j q l", "i j k l"),
    ("sort", "basic", "i l k j", "i j k l"),
    ("successor", "interval", "i k m o", "i k m q"),
    ("successor", "grouping", "i i j j k k l l", "i i j j k k m m"),
    ("successor", "distractor", "i x j x k x l x", "i x j x k x m x"),
    ("successor", "numbers", "1 2 3 4", "1 2 3 5"),
    ("successor", "reversed", "l k j i", "l k j h"),
    ("predecessor", "reversed", "l k j i", "m k j i"),
    ("sort", "reversed", "l j k i", "l k j i"),
    ("fix_alphabet", "interval+reversed", "o m c i", "o m k i"),
    ("remove_redundant", "grouping+distractor+numbers", "9 9 0 0 9 9 0 0 10 10 0 0",
     "9 9 0 0 10 10 0 0"),
])
def test_apply_by_hand(transformation, level, c, d):
  assert analogy.apply(transformation, c.split(), level) == d.split()


def test_apply_rejects_what_it_cannot_read():
  with pytest.raises(ValueError):
    analogy.apply("successor", list("wxyz"))  # no letter after z
  with pytest.raises(ValueError):
    analogy.apply("remove_redundant", list("abcd"))
  with pytest.raises(ValueError):
    analogy.apply("successor", list("aabbc"), "grouping")
  with pytest.raises(ValueError, match="unknown letter-string level"):
    analogy.apply("successor", list("abcd"), "sideways")


def test_letter_string_answers_are_correct():
  for item in letter_items():
    a, b, c = analogy.parse_letter_prompt(item.prompt)
    assert analogy.apply(item.type, a) == b, item
    assert analogy.apply(item.type, c, item.level) == analogy.parse_letter_answer(item.answer)
    assert item.answer.endswith("]") and item.answer.count("]") == 1
    assert c != a


def test_sort_items_say_which_way_to_sort():
  for item in letter_items(types=("sort",), levels=("basic", "reversed")):
    c = analogy.parse(analogy.parse_letter_prompt(item.prompt)[2], item.level)
    # Any other reading (sorting the other way) would need more than one swap.
    other = sorted(c, reverse=item.level == "basic")
    assert sum(x != y for x, y in zip(c, other)) != 2


def test_every_type_and_level_is_produced():
  items = letter_items()
  counts = collections.Counter((i.type, i.level) for i in items)
  assert set(counts) == {(t, l) for t in analogy.TRANSFORMATIONS for l in analogy.LEVELS}
  assert min(counts.values()) >= 20
  words = collections.Counter((i.type, i.level) for i in word_items())
  assert set(words) == {(r, l) for r in analogy.RELATIONS for l in analogy.WORD_LEVELS}


def test_combined_levels():
  items = letter_items(n=300, levels=("interval+reversed", "longer+grouping+distractor"))
  assert {i.level for i in items} == {"interval+reversed", "longer+grouping+distractor"}
  for item in items:
    c = analogy.parse_letter_prompt(item.prompt)[2]
    assert analogy.apply(item.type, c, item.level) == analogy.parse_letter_answer(item.answer)


def _expected_form(stem, relation):
  # Written out again from the documented rules, separately from analogy.inflect.
  if relation == "negation":
    return "un" + stem
  if relation == "plural":
    return stem + ("es" if re.search("[sxz]$", stem) else "s")
  return stem + {"comparative": "er", "superlative": "est", "past": "ed",
                 "progressive": "ing", "agent": "ist"}[relation]


def test_inflect_by_hand():
  assert analogy.inflect("blick", "plural") == "blicks"
  assert analogy.inflect("dax", "plural") == "daxes"
  assert analogy.inflect("dax", "negation") == "undax"
  assert analogy.inflect("tuzel", "past") == "tuzeled"


def test_word_analogy_answers_are_correct():
  word = re.compile(r"^([bdfgklmnprstvxz][aeiou][bdfgklmnprstvxz]?)+$")
  for item in word_items():
    m = re.fullmatch(r"(\w+) : (\w+) :: (\w+) :", item.prompt)
    assert m, item
    a, b, c = m.groups()
    assert word.match(a) and word.match(c)
    assert sum(ch in "aeiou" for ch in c) == (3 if item.level == "longer" else 2)
    assert b == _expected_form(a, item.type)
    assert item.answer == " " + _expected_form(c, item.type)


@pytest.mark.parametrize("task", analogy.TASKS)
def test_splits_are_disjoint(task):
  kw = dict(seed=3, eval_fraction=0.2, task=task)
  train = list(analogy.generate("train", 3000, **kw))
  evals = list(analogy.generate("eval", 600, **kw))
  eval_prompts = {i.prompt for i in evals}
  assert len(eval_prompts) == len(evals)
  assert not eval_prompts & {i.prompt for i in train}
  for item in train[:200] + evals[:200]:
    digest = hashlib.blake2b(item.prompt.encode(), digest_size=8).digest()
    assert (int.from_bytes(digest, "little") / 2 ** 64 < 0.2) == (item in evals)


@pytest.mark.parametrize("task", analogy.TASKS)
def test_same_seed_same_items(task):
  kw = dict(eval_fraction=0.1, task=task)
  first = list(analogy.generate("train", 200, seed=7, **kw))
  assert first == list(analogy.generate("train", 200, seed=7, **kw))
  assert first != list(analogy.generate("train", 200, seed=8, **kw))


def test_exclude_keeps_prompts_out():
  kw = dict(seed=0, eval_fraction=0.1, types=("successor",), levels=("basic",))
  banned = frozenset(i.prompt for i in analogy.generate("train", 100, **kw))
  assert not banned & {i.prompt for i in analogy.generate("train", 500, exclude=banned, **kw)}


def test_bad_arguments():
  with pytest.raises(ValueError, match="unknown split"):
    next(analogy.generate("test", 1, seed=0, eval_fraction=0.1))
  with pytest.raises(ValueError, match="unknown task"):
    next(analogy.generate("train", 1, seed=0, eval_fraction=0.1, task="chess"))
  with pytest.raises(ValueError, match="unknown letter-string level"):
    next(analogy.generate("train", 1, seed=0, eval_fraction=0.1, levels=("huge",)))
  with pytest.raises(ValueError, match="cannot draw"):
    list(analogy.generate("eval", 1, seed=0, eval_fraction=0.0, task="word_analogy"))


def test_webb_problems_load(webb):
  assert len(webb) == 2800
  assert {i.task for i in webb} == {"letter_string_webb"}
  assert {i.type for i in webb} == set(analogy.TRANSFORMATIONS)
  levels = collections.Counter(i.level for i in webb)
  assert levels["realworld"] == 400 and levels["basic"] == 600
  assert {l for l in levels if "+" not in l} == set(analogy.LEVELS) | {"realworld"}
  assert webb[0].text == "[t u v w] [t u v x] ; [p q r s] [p q r t]"


def test_webb_answers_follow_our_transformations(webb):
  # Their generalisations read the same way as ours: every non-real-world answer is what
  # `apply` computes from the target sequence at the stored level.
  checked = 0
  for item in webb:
    if item.level == "realworld":
      continue
    c = analogy.parse_letter_prompt(item.prompt)[2]
    assert analogy.apply(item.type, c, item.level) == analogy.parse_letter_answer(item.answer)
    checked += 1
  assert checked == 2400


def _copy_c(item):
  return analogy.letter_answer(analogy.parse_letter_prompt(item.prompt)[2])


def test_same_metric_scores_ours_and_theirs(webb):
  ours = letter_items(n=500)
  for items in (ours, webb):
    oracle = [metrics.exact_match(i.answer, i.answer) for i in items]
    copy = [metrics.exact_match(_copy_c(i), i.answer) for i in items]
    assert np.mean(oracle) == 1.0
    assert np.mean(copy) == 0.0  # every transformation changes the sequence
    summary = metrics.summarize(copy)
    assert summary["n"] == len(items) and summary["ci_low"] == summary["mean"] == 0.0
    # Copying still earns partial credit: most symbols are in place.
    distance = np.mean([metrics.normalized_edit_distance(
        _copy_c(i).split(), i.answer.split()) for i in items])
    assert 0.0 < distance < 0.5
