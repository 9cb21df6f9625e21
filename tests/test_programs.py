"""Programs-from-examples problems: disjoint splits by function, determinism, coverage, correct
and compact references, scoring of samples, and pass@k against enumeration."""

import collections
import itertools
import math
import re
from fractions import Fraction

import pytest

from scaling.data.tasks import interpreter as interp
from scaling.data.tasks import programs
from scaling.evals import metrics

EVAL_FRACTION = 0.1
PROMPT = re.compile(r"(f\(\d(,\d)?\)=-?\d+;){2,4}f\(x(,y)?\)=")


@pytest.fixture(scope="module")
def train():
  return list(programs.generate("train", 20_000, seed=0, eval_fraction=EVAL_FRACTION))


@pytest.fixture(scope="module")
def held_out():
  return list(programs.generate("eval", 1_000, seed=0, eval_fraction=EVAL_FRACTION))


def test_no_held_out_function_is_trained_on(train, held_out):
  # Membership is a function of behaviour alone, so no training problem is in the eval split
  # whatever eval set is drawn, and neither a held-out function nor its spelling is trained on.
  assert not any(programs.in_eval_split(p, EVAL_FRACTION) for p in train)
  assert all(programs.in_eval_split(p, EVAL_FRACTION) for p in held_out)
  assert not {p.fingerprint for p in held_out} & {p.fingerprint for p in train}
  assert not {p.canonical for p in held_out} & {p.canonical for p in train}
  assert not {interp.canonical(p.answer) for p in held_out} & {p.canonical for p in train}


def test_fingerprint_is_the_behaviour_on_the_whole_domain(train, held_out):
  for p in held_out + train[:300]:
    program = interp.parse(p.answer, p.arity)
    outputs = [interp.evaluate(program, x).value for x in programs.inputs(p.arity)]
    assert p.fingerprint == f"{p.arity}:{','.join(map(str, outputs))}"
  # The same function written differently is one item of the split.
  spellings = collections.defaultdict(set)
  for p in train:
    spellings[p.fingerprint].add(p.canonical)
  assert max(len(s) for s in spellings.values()) > 1


def test_held_out_problems_are_distinct_and_train_repeats(train, held_out):
  assert len({p.fingerprint for p in held_out}) == len(held_out) == 1_000
  assert len({p.fingerprint for p in train}) < len(train)


def test_deterministic():
  a = list(programs.generate("train", 300, seed=3, eval_fraction=EVAL_FRACTION))
  b = list(programs.generate("train", 300, seed=3, eval_fraction=EVAL_FRACTION))
  c = list(programs.generate("train", 300, seed=4, eval_fraction=EVAL_FRACTION))
  assert a == b and a != c


def test_every_level_and_arity_is_produced(train, held_out):
  assert ({(p.level, p.arity) for p in train}
          == set(itertools.product(programs.LEVELS, programs.ARITIES)))
  # Only x+y, x-y, y-x and x*y are two-argument depth1 functions, too few for every split.
  assert {p.level for p in held_out} == set(programs.LEVELS)
  for p in held_out + train[:3000]:
    program = interp.parse(p.answer, p.arity)
    if p.level != "cond":
      assert program.height == programs.LEVELS.index(p.level) + 1
    else:
      assert isinstance(program.body, (interp.Cond, interp.Call))
  only = list(programs.generate("eval", 50, seed=0, eval_fraction=0.5, levels=("cond",),
                                arities=(2,)))
  assert {(p.level, p.arity) for p in only} == {("cond", 2)}
  with pytest.raises(ValueError):
    next(programs.generate("train", 1, seed=0, eval_fraction=0.1, levels=("depth9",)))


def test_references_pass_their_own_examples(train, held_out):
  for p in held_out + train[:3000]:
    score = programs.score(p, p.answer)
    assert score.passed and score.hidden_fraction == 1.0 and score.reason is None, p
    assert p.answer == p.program == p.canonical == interp.canonical(p.answer)


def test_problems_are_interesting(train, held_out):
  for p in held_out + train[:3000]:
    outputs = [int(v) for v in p.fingerprint.split(":")[1].split(",")]
    assert len(set(outputs)) > 1 and max(map(abs, outputs)) <= programs.VALUE_BOUND
    if p.arity == 2:  # depends on both arguments
      table = [outputs[i:i + 10] for i in range(0, 100, 10)]
      assert len(set(map(tuple, table))) > 1 and any(len(set(row)) > 1 for row in table)
    assert 2 <= len(p.visible) <= 4
    assert len(p.hidden) == min(programs.N_HIDDEN, 10 ** p.arity - len(p.visible))
    shown = [x for x, _ in p.visible + p.hidden]
    assert len(set(shown)) == len(shown) and set(shown) <= set(programs.inputs(p.arity))
    # No `x*1`, `x+0`, `x%10` and the like: literals are 1-9 and no `*1`, `//1`.
    assert not re.search(r"[*/]1(?!\d)", p.answer) and "0" not in p.answer


def test_prompt_format_and_length(train, held_out):
  for p in held_out + train:
    assert PROMPT.fullmatch(p.prompt), p.prompt
    assert len(p.prompt + p.answer) <= programs.MAX_CHARS
  p = programs.Problem("x*2+1", "x*2+1", 1, (((3,), 7), ((5,), 11), ((0,), 1)), (), "depth2",
                       "")
  assert (p.prompt, p.answer) == ("f(3)=7;f(5)=11;f(0)=1;f(x)=", "x*2+1")
  q = programs.Problem("x*y", "x*y", 2, (((3, 4), 12), ((1, 0), 0)), (), "depth1", "")
  assert q.text == "f(3,4)=12;f(1,0)=0;f(x,y)=x*y"
  short = list(programs.generate("train", 500, seed=0, eval_fraction=0.1, max_chars=30))
  assert max(len(p.text) for p in short) <= 30


def test_score():
  p = programs.Problem("x*2+1", "x*2+1", 1, (((3,), 7), ((5,), 11)),
                       (((0,), 1), ((1,), 3), ((2,), 5), ((9,), 19)), "depth2", "")
  for right in ("x*2+1", "2*x+1", "x+x+1", " f(n)=1+n*2 ", "x<0?0:1+2*x"):
    assert programs.score(p, right) == programs.Score(True, True, 1.0, True, None), right
  assert programs.score(p, right).passed
  assert programs.score(p, "x>4?11:x*2+1") == programs.Score(True, True, 0.75, False,
                                                             "wrong_output")
  assert programs.score(p, "x<4?7:11") == programs.Score(True, True, 0.0, False,
                                                         "wrong_output")
  assert programs.score(p, "x*2") == programs.Score(True, False, 0.0, False, "wrong_output")
  assert programs.score(p, "x==9?19:x*2+1") == programs.Score(True, True, 1.0, True, None)
  assert programs.score(p, "x==3?f(x):x*2+1") == programs.Score(True, False, 1.0, True,
                                                                "recursion_limit")
  assert not programs.score(p, "x==3?f(x):x*2+1").passed
  assert programs.score(p, "x*2+") == programs.Score(False, False, 0.0, False, "syntax")
  assert programs.score(p, "y").reason == "name"
  assert programs.score(p, "x*2+1+0//(x-9)").reason == "division_by_zero"
  assert programs.score(p, "x*2+1", interp.Limits(max_steps=3)).reason == "step_limit"


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_is_the_fraction_of_subsets(n):
  for c in range(n + 1):
    for k in range(1, n + 1):
      subsets = list(itertools.combinations(range(n), k))  # samples 0..c-1 are correct
      brute = sum(any(i < c for i in s) for s in subsets) / len(subsets)
      assert abs(metrics.pass_at_k(n, c, k) - brute) < 1e-12, (n, c, k)


def test_pass_at_k_large_n():
  for n, c, k in [(2000, 100, 50), (10_000, 3, 7), (100_000, 1, 1), (10 ** 6, 2, 10),
                  (5000, 4990, 5)]:
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert metrics.pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-9, abs=0)
  assert metrics.pass_at_k(10 ** 6, 10 ** 6 - 5, 6) == 1.0
  assert metrics.pass_at_k(10 ** 6, 0, 1000) == 0.0


@pytest.mark.parametrize("n, c, k", [(5, 2, 6), (5, 2, 0), (5, 6, 1), (5, -1, 1), (0, 0, 1),
                                     (5.0, 2, 1), (5, 2, 1.5), (True, 1, 1), ("5", 2, 1)])
def test_pass_at_k_rejects_bad_inputs(n, c, k):
  with pytest.raises(ValueError):
    metrics.pass_at_k(n, c, k)
