"""The program language: hand-computed values, every limit and failure reason, no host code
run, nothing raised for any text, and canonical forms."""

import os
import random
import re

import pytest

from scaling.data.tasks import interpreter as interp
from scaling.data.tasks.interpreter import BinOp, Call, Cond, Limits, Lit, Neg, Var

WIDE = Limits(max_chars=10 ** 6)  # only the limit under test binds


@pytest.mark.parametrize("text, args, value", [
    # Floor division and modulo round towards minus infinity; unary minus binds tightest.
    ("x//2", (-7,), -4), ("x%3", (-7,), 2), ("x%-3", (7,), -2), ("x//-2", (7,), -4),
    ("-x//2", (7,), -4), ("-(x//2)", (7,), -3), ("-x*-x", (4,), 16), ("--x", (3,), 3),
    # Precedence and left associativity.
    ("2+3*x", (4,), 14), ("2*3+x", (4,), 10), ("10-x-3", (4,), 3), ("100//x//5", (10,), 2),
    ("2*x%7", (5,), 3), ("x-3<4", (6,), 1), ("1+(x>2)", (3,), 2), ("(x+1)*(x-1)", (5,), 24),
    # Comparisons give 1 or 0.
    ("x==3", (3,), 1), ("x!=3", (3,), 0), ("x<=3", (3,), 1), ("x>=4", (3,), 0),
    ("x>y", (5, 2), 1), ("x<y", (5, 2), 0),
    # Conditionals are right-associative; a nonzero test chooses the first branch.
    ("x<5?x*2:x-1", (3,), 6), ("x<5?x*2:x-1", (7,), 6), ("x<3?0:x<6?1:2", (4,), 1),
    ("x<3?0:x<6?1:2", (7,), 2), ("x?10:20", (-1,), 10), ("x?10:20", (0,), 20),
    ("min(x,y)-max(x,y)", (3, 8), -5), ("abs(x-10)", (3,), 7), ("max(-x,x*2)", (-4,), 4),
    # Recursion.
    ("x<2?1:x*f(x-1)", (10,), 3628800), ("x<1?0:x+f(x-1)", (50,), 1275),
    ("y==0?x:f(y,x%y)", (48, 18), 6), ("x<2?x:f(x-1)+f(x-2)", (10,), 55),
    # Headers name the parameters; whitespace and leading zeros do not matter.
    ("f(n)=n<2?1:n*f(n-1)", (5,), 120), ("f(a,b)=a-b", (5, 3), 2), ("f(y,x)=x-y", (5, 3), -2),
    (" x * 2 +\t1\n", (3,), 7), ("007*x", (2,), 14),
])
def test_values(text, args, value):
  assert interp.run(text, args) == interp.Result(value)


@pytest.mark.parametrize("text, args, reason, limits", [
    ("f(x)=f(x)", (1,), "recursion_limit", None), ("f(x)", (1,), "recursion_limit", None),
    ("f(x)=f(x+1)", (1,), "recursion_limit", None),
    ("x<1?0:1+f(x-1)", (10 ** 6,), "recursion_limit", None),
    ("f(x)", (1,), "step_limit", Limits(max_recursion=10 ** 9)),
    ("x<1?0:f(x-1)+f(x-1)", (30,), "step_limit", None),  # exponential, not deep
    ("*".join(["x"] * 16), (9,), "overflow", None),
    ("f(x*x)", (2,), "overflow", None),  # repeated squaring stops at the bound, not later
    ("x*1000000*1000000", (1,), "overflow", None),
    ("999999999999+x", (1,), "overflow", None),
    ("1000000000000", (1,), "overflow", None),
    ("x+1", (10 ** 12,), "overflow", None),
    ("9" * 5000, (1,), "overflow", WIDE),
    ("x//0", (1,), "division_by_zero", None),
    ("x%0", (1,), "division_by_zero", None),
    ("x//(x-x)", (5,), "division_by_zero", None),
    ("x%(y-3)", (5, 3), "division_by_zero", None),
    ("x+" * 200 + "x", (1,), "too_long", None),
    ("(" * 10_000 + "x" + ")" * 10_000, (1,), "too_long", None),
    ("(" * 10_000 + "x" + ")" * 10_000, (1,), "too_deep", WIDE),
    ("(" * 10_000, (1,), "too_deep", WIDE),
    ("-" * 10_000 + "x", (1,), "too_deep", WIDE),
    ("f(" * 5_000 + "x" + ")" * 5_000, (1,), "too_deep", WIDE),
    ("x?" * 5_000 + "x" + ":1" * 5_000, (1,), "too_deep", WIDE),
    ("+".join(["x"] * 60), (1,), "too_deep", None),  # a flat chain is a tall tree
    # Limits far above what the host's stack allows still fail cleanly.
    ("(" * 10_000 + "x" + ")" * 10_000, (1,), "too_deep",
     Limits(max_chars=10 ** 6, max_depth=10 ** 6)),
    ("", (1,), "syntax", None), ("   ", (1,), "syntax", None), ("x+", (1,), "syntax", None),
    ("x y", (1,), "syntax", None), ("2x", (1,), "syntax", None), ("x/2", (1,), "syntax", None),
    ("x**2", (1,), "syntax", None), ("x=1", (1,), "syntax", None), ("x?1", (1,), "syntax", None),
    ("(x", (1,), "syntax", None), ("x)", (1,), "syntax", None), ("min(x,)", (1,), "syntax", None),
    ("f()", (1,), "syntax", None), ("X", (1,), "syntax", None), ("x;1", (1,), "syntax", None),
    ("1<2<x", (1,), "syntax", None), ("x if x else 1", (1,), "syntax", None),
    ("f(a,)=a", (1,), "syntax", None), ("f(a,a)=a", (1,), "syntax", None),
    ("f(min)=1", (1,), "syntax", None), ("x+\u0663", (1,), "syntax", None),
    ("z", (1,), "name", None), ("y", (1,), "name", None), ("foo(x)", (1,), "name", None),
    ("x(1)", (1,), "name", None),
    ("min(x)", (1,), "arity", None), ("max(x,1,2)", (1,), "arity", None),
    ("abs(x,x)", (1,), "arity", None), ("f(x,x)", (1,), "arity", None),
    ("f(x)", (1, 2), "arity", None), ("f(a,b)=a", (1,), "arity", None),
    ("x", (), "arity", None), ("x", (1, 2, 3), "arity", None),
])
def test_failures(text, args, reason, limits):
  assert reason in interp.REASONS
  assert interp.run(text, args, limits or interp.DEFAULT_LIMITS) == interp.Result(reason=reason)


def test_each_limit_is_the_one_set():
  assert interp.run("x<1?0:1+f(x-1)", (5,), Limits(max_recursion=5)).value == 5
  assert interp.run("x<1?0:1+f(x-1)", (6,), Limits(max_recursion=5)).reason == "recursion_limit"
  assert interp.run("x*x", (999,), Limits(max_value=998002)).value == 998001
  assert interp.run("x*x", (999,), Limits(max_value=998001)).reason == "overflow"
  assert interp.run("x+1", (1,), Limits(max_chars=3)).value == 2
  assert interp.run("x+1 ", (1,), Limits(max_chars=3)).reason == "too_long"
  assert interp.run("((x))", (1,), Limits(max_depth=3)).value == 1
  assert interp.run("(((x)))", (1,), Limits(max_depth=3)).reason == "too_deep"
  # A step per node evaluated: x, 1 and +; and one or two more for a conditional.
  assert interp.run("x+1", (1,), Limits(max_steps=3)).value == 2
  assert interp.run("x+1", (1,), Limits(max_steps=2)).reason == "step_limit"
  assert interp.run("x?2:3", (0,), Limits(max_steps=3)).value == 3
  assert interp.run("x?2:3", (1,), Limits(max_steps=3)).reason == "step_limit"


def test_parse_once_evaluate_many():
  program = interp.parse("x*y+1")
  assert program.arity == 2
  assert [interp.evaluate(program, (a, b)).value for a in range(3) for b in range(3)] == [
      a * b + 1 for a in range(3) for b in range(3)]
  assert interp.evaluate(program, (1,)).reason == "arity"
  assert interp.parse("x+1").arity == 1 and interp.parse("f(a,b)=a").arity == 2
  with pytest.raises(interp.ProgramError) as e:
    interp.parse("x+")
  assert e.value.reason == "syntax"


def test_any_text_gives_a_result():
  rng = random.Random(0)
  alphabet = "xyfminabs0123456789+-*/%<>=!?:(),  \n_.'"
  pieces = ["x", "y", "f(", "min(", "max(", "abs(", "//", "==", "<=", "?", ":", "(", ")",
            ",", "-", "9", "1"]
  for i in range(3000):
    if i % 2:
      text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
    else:
      text = "".join(rng.choice(pieces) for _ in range(rng.randrange(30)))
    for args in ((3,), (3, 4), (-7, 0)):
      result = interp.run(text, args, Limits(max_steps=2000))
      assert isinstance(result, interp.Result)
      assert (result.value is None) != (result.reason is None)
      assert result.reason is None or result.reason in interp.REASONS


@pytest.mark.parametrize("text", [
    "__import__('os').system('touch {marker}')", "open('{marker}','w')",
    "exec(\"open('{marker}','w')\")", "eval(\"open('{marker}','w')\")",
    "().__class__.__base__", "lambda:open('{marker}','w')", "import os",
    "[open('{marker}','w')]", "x;open('{marker}','w')", "f(x)=open('{marker}','w')",
])
def test_never_runs_host_code(text, tmp_path):
  marker = tmp_path / "pwned"
  result = interp.run(text.format(marker=marker), (1,), WIDE)
  assert result.reason in ("syntax", "name")
  assert not os.path.exists(marker)


def test_source_has_no_host_evaluation():
  for module in (interp,):
    with open(module.__file__) as f:
      source = f.read()
    assert not re.search(r"\b(eval|exec|compile|__import__|getattr|importlib)\s*\(", source)
    assert "import ast" not in source and "builtins" not in source


def test_canonical_normalises_spelling():
  same = ["x*(y+1)", "f(a,b)=a*(b+1)", " ( (x) * ( y + 1 ) ) ", "f(p,q)=((p)*((q)+(01)))",
          "f( x , y ) = x*(y+1)"]
  assert {interp.canonical(t) for t in same} == {"x*(y+1)"}
  assert interp.canonical("f(b,a)=a-b") == "y-x"
  assert interp.canonical("(x<2)<3") == "(x<2)<3"
  assert interp.canonical("x--3") == "x--3" and interp.canonical("-(-x)") == "--x"
  assert interp.canonical("(x?1:2)?3:(y?4:5)") == "(x?1:2)?3:y?4:5"


@pytest.mark.parametrize("a, b", [
    ("x*y+1", "x*(y+1)"), ("x-y", "y-x"), ("x+1", "1+x"), ("x-(y-1)", "x-y-1"),
    ("f(a,b)=a-b", "f(b,a)=a-b"), ("x//2*2", "x//(2*2)"), ("-x%3", "-(x%3)"),
    ("x<1?2:3", "x<1?3:2"), ("min(x,y)", "max(x,y)"),
])
def test_canonical_tells_programs_apart(a, b):
  assert interp.canonical(a) != interp.canonical(b)


def random_tree(rng: random.Random, depth: int):
  if depth == 0 or rng.random() < 0.2:
    return Var(rng.randrange(2)) if rng.random() < 0.5 else Lit(rng.randrange(30))
  sub = lambda: random_tree(rng, depth - 1)
  kind = rng.randrange(5)
  if kind == 0:
    return Neg(sub())
  if kind == 1:
    return Cond(sub(), sub(), sub())
  if kind == 2:
    name = rng.choice(["min", "max", "abs", "f"])
    return Call(name, tuple(sub() for _ in range(interp.BUILTINS.get(name, 2))))
  return BinOp(rng.choice(interp.ARITHMETIC + interp.COMPARISONS), sub(), sub())


def test_canonical_round_trips_every_tree():
  # parse(canonical(t)) == t for every tree t makes canonical one-to-one on trees.
  rng = random.Random(0)
  for _ in range(2000):
    tree = random_tree(rng, 5)
    text = interp.canonical(tree)
    program = interp.parse(text, 2, WIDE)
    assert program.body == tree, text
    assert interp.canonical(program) == text
    assert " " not in text
