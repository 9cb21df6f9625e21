"""Programs from input/output examples: write a function that maps the inputs shown to their
outputs, in the language of `interpreter`; a sample is scored by running it on held-out
inputs, not by comparing its text with the reference.

The prompt is the visible examples, each `f(inputs)=output;`, then the header to complete:

  prompt `f(3)=7;f(5)=11;f(0)=1;f(x)=`    answer `x*2+1`
  prompt `f(3,4)=12;f(1,0)=0;f(x,y)=`     answer `x*y`

Inputs are digits (DOMAIN). A problem shows 2 to 4 visible examples and keeps up to 8 other
inputs of the domain as hidden tests; `prompt + answer` is at most `max_chars` characters
(MAX_CHARS by default; longer draws are rejected). Reference programs are drawn at a level:

  depth1, depth2, depth3  arithmetic (+ - * // %) whose tree has exactly that height
  cond                    `c?a:b` on a comparison, min, max or abs, over depth <= 1 operands

Literals are 1-9. A drawn program is kept only when, on every input of the domain, it and
each of its subtrees run without error and stay within |v| <= VALUE_BOUND; no operation is
constant or computes the same function as one of its subtrees (so no `x*1`, `x%10` or
`x+3-3`); and a two-argument program depends on both arguments. The answer is the program's
canonical form (fewest parentheses), with a literal operand of a commutative operation
written last and `x` before `y` (`x+3` and `x*y`, never `3+x` or `y*x`).

`score` runs a sample on the examples: it passes when it parses and gives every visible and
every hidden output.

An item belongs to the eval split when a hash of its fingerprint, the program's outputs on
the whole domain, falls below `eval_fraction`. So the split is decided by the function, not
its spelling or examples: no held-out function, however written, is ever trained on, and no
held-out canonical form occurs in training. The depth1 level has only 56 functions (52 of
one argument, and x+y, x-y, y-x, x*y), so its eval split is small.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from typing import Iterator

import numpy as np

from scaling.data.tasks import interpreter as interp
from scaling.data.tasks import splits
from scaling.data.tasks.interpreter import BinOp, Call, Cond, Lit, Var

LEVELS = ("depth1", "depth2", "depth3", "cond")
ARITIES = (1, 2)
DOMAIN = tuple(range(10))  # every input is one of these
VALUE_BOUND = 999  # |v| of every output and intermediate of a reference program
N_VISIBLE = (2, 4)  # inclusive range of examples in a prompt
N_HIDDEN = 8
MAX_CHARS = 64  # longest prompt + answer


@dataclasses.dataclass(frozen=True)
class Problem:
  """One problem: a reference program and its examples, as (inputs, output) pairs."""
  program: str  # the reference, as the answer writes it
  canonical: str
  arity: int
  visible: tuple
  hidden: tuple
  level: str
  fingerprint: str  # the outputs on the whole domain, which decide the split

  @property
  def prompt(self) -> str:
    shown = "".join(f"f({','.join(map(str, x))})={y};" for x, y in self.visible)
    return f"{shown}f({','.join(interp.PARAMS[:self.arity])})="

  @property
  def answer(self) -> str:
    return self.program

  @property
  def text(self) -> str:
    return self.prompt + self.answer


def in_eval_split(problem: Problem, eval_fraction: float) -> bool:
  """Deterministic membership of the held-out split, from the problem's function alone."""
  return splits.in_eval_split(problem.fingerprint, eval_fraction)


def inputs(arity: int) -> list[tuple[int, ...]]:
  """Every input of the domain, in the order of a fingerprint."""
  return list(itertools.product(DOMAIN, repeat=arity))


_INPUTS = {a: inputs(a) for a in ARITIES}
_COLUMNS = {a: tuple(np.array(c, dtype=np.int64) for c in zip(*_INPUTS[a])) for a in ARITIES}


# --- drawing programs -----------------------------------------------------------------


# A kept subtree is a tuple: its node, its outputs on the whole domain (an int64 array), the
# set of the outputs of it and its subtrees (as bytes), and the variables it uses (bit i for
# parameter i).

_RETRIES = 4  # draws of an operation and its shorter operand before its taller one is redrawn


def _var(index: int, arity: int) -> tuple:
  column = _COLUMNS[arity][index]
  return Var(index), column, frozenset([column.tobytes()]), 1 << index


def _lit(value: int, arity: int) -> tuple:
  return Lit(value), np.full(len(DOMAIN) ** arity, value, dtype=np.int64), frozenset(), 0


def _ordered(op: str, a: tuple, b: tuple) -> tuple:
  """Operands of a commutative operation in the written order: variables before literals,
  x before y; others as drawn."""
  x, y = a[0], b[0]
  if op in ("+", "*", "min", "max", "==", "!=") and (
      (isinstance(x, Lit) and not isinstance(y, Lit))
      or (isinstance(x, Var) and isinstance(y, Var) and x.index > y.index)):
    return b, a
  return a, b


_NUMPY = {"+": np.add, "-": np.subtract, "*": np.multiply, "//": np.floor_divide,
          "%": np.mod, "<": np.less, "<=": np.less_equal, ">": np.greater,
          ">=": np.greater_equal, "==": np.equal, "!=": np.not_equal, "min": np.minimum,
          "max": np.maximum}


def _kept(node, kids: list) -> tuple | None:
  """`node` as a kept subtree, given its children as kept subtrees; None when it is not kept
  (see the module docstring)."""
  tables = [kid[1] for kid in kids]
  if isinstance(node, Cond):
    out = np.where(tables[0] != 0, tables[1], tables[2])
  elif isinstance(node, Call) and node.name == "abs":
    out = np.abs(tables[0])
  else:
    op = node.op if isinstance(node, BinOp) else node.name
    if op in ("//", "%") and not tables[1].all():
      return None
    out = _NUMPY[op](*tables).astype(np.int64, copy=False)
  low, high = out.min(), out.max()
  if low == high or low < -VALUE_BOUND or high > VALUE_BOUND:
    return None
  key, below = out.tobytes(), frozenset().union(*(kid[2] for kid in kids))
  if key in below:
    return None
  uses = 0
  for kid in kids:
    uses |= kid[3]
  return node, out, below | {key}, uses


_SMALL: dict = {}


def _small(arity: int) -> tuple[list, list]:
  """Every leaf, and every kept subtree of height 1, as kept subtrees."""
  if arity not in _SMALL:
    leaves = ([_var(i, arity) for i in range(arity)]
              + [_lit(v, arity) for v in range(1, 10)])
    ones = {}
    for op in interp.ARITHMETIC:
      for a, b in itertools.product(leaves, repeat=2):
        a, b = _ordered(op, a, b)
        node = BinOp(op, a[0], b[0])
        if node not in ones and not (isinstance(a[0], Lit) and isinstance(b[0], Lit)):
          ones[node] = _kept(node, [a, b])
    _SMALL[arity] = leaves, [kept for kept in ones.values() if kept is not None]
  return _SMALL[arity]


def _arithmetic(rng: random.Random, h: int, arity: int) -> tuple | None:
  """A kept arithmetic subtree of height exactly `h`, or None after _RETRIES failures. Those
  of height 0 and 1 are drawn uniformly from all there are."""
  if h <= 1:
    return rng.choice(_small(arity)[h])
  tall = _arithmetic(rng, h - 1, arity)
  for _ in range(_RETRIES if tall is not None else 0):
    op = rng.choice(interp.ARITHMETIC)
    short = _arithmetic(rng, rng.randrange(h), arity)
    if short is None:
      continue
    # A divisor that uses a variable is mostly 0 somewhere on the domain, so it is rarely
    # the taller operand.
    swap = rng.random() < (0.2 if op in ("//", "%") else 0.5)
    a, b = _ordered(op, *((short, tall) if swap else (tall, short)))
    kept = _kept(BinOp(op, a[0], b[0]), [a, b])
    if kept is not None:
      return kept
  return None


def _conditional(rng: random.Random, arity: int) -> tuple | None:
  """A kept `c?a:b`, min, max or abs at the root, over operands of height 0 or 1, or None."""
  operand = lambda: _arithmetic(rng, rng.randrange(2), arity)
  form = rng.choice(("cond", "min", "max", "abs"))
  if form == "abs":
    arg = _arithmetic(rng, 1, arity)
    return arg and _kept(Call("abs", (arg[0],)), [arg])
  if form == "cond":
    var = rng.randrange(arity)
    other = (_var(1 - var, arity) if arity == 2 and rng.random() < 0.5
             else _lit(rng.randint(1, 9), arity))
    op = rng.choice(interp.COMPARISONS)
    a, b = _ordered(op, _var(var, arity), other)
    kids = [_kept(BinOp(op, a[0], b[0]), [a, b]), operand(), operand()]
  else:
    kids = [operand(), operand()]
  if any(kid is None for kid in kids):
    return None
  if form == "cond":
    return _kept(Cond(*(kid[0] for kid in kids)), kids)
  a, b = _ordered(form, *kids)
  return _kept(Call(form, (a[0], b[0])), [a, b])


def _uses_both(table: np.ndarray) -> bool:
  t = table.reshape(len(DOMAIN), len(DOMAIN))
  return not (t == t[:1]).all() and not (t == t[:, :1]).all()


def sample(rng: random.Random, level: str, arity: int, *,
           n_visible: tuple[int, int] = N_VISIBLE, n_hidden: int = N_HIDDEN) -> Problem:
  """A random problem of `level` with `arity` arguments (see the module docstring). Draws
  from a `random.Random`, whose scalar draws are much faster than numpy's."""
  if level not in LEVELS:
    raise ValueError(f"unknown level {level!r}; known: {LEVELS}")
  if arity not in ARITIES:
    raise ValueError(f"arity must be one of {ARITIES}, not {arity}")
  while True:
    kept = (_conditional(rng, arity) if level == "cond"
            else _arithmetic(rng, LEVELS.index(level) + 1, arity))
    if kept is not None and (arity == 1 or kept[3] == 3 and _uses_both(kept[1])):
      break
  node, table = kept[:2]
  points, outputs = _INPUTS[arity], table.tolist()
  k = rng.randint(*n_visible)
  chosen = rng.sample(range(len(points)), min(k + n_hidden, len(points)))
  examples = tuple((points[i], outputs[i]) for i in chosen)
  text = interp.canonical(node)
  return Problem(text, text, arity, examples[:k], examples[k:], level,
                 f"{arity}:{','.join(map(str, outputs))}")


def _check(problem: Problem, parsed: dict) -> None:
  """Every example of `problem` as the interpreter runs its reference answer; `parsed` caches
  parsed answers."""
  key = problem.answer, problem.arity
  if key not in parsed:
    parsed[key] = interp.parse(*key)
  program = parsed[key]
  for x, y in problem.visible + problem.hidden:
    result = interp.evaluate(program, x)
    if result.value != y:
      raise RuntimeError(f"{problem.answer} on {x} gives {result}, not {y}")


def generate(split: str, n: int, *, seed: int, eval_fraction: float,
             levels: tuple[str, ...] = LEVELS, arities: tuple[int, ...] = ARITIES,
             n_visible: tuple[int, int] = N_VISIBLE, n_hidden: int = N_HIDDEN,
             max_chars: int = MAX_CHARS, max_tries: int | None = None) -> Iterator[Problem]:
  """`n` problems of one split, each of a uniformly drawn level and arity (see `splits.draw`);
  eval problems have distinct functions, train problems may repeat. Each is checked by
  running its answer on its examples."""
  for level in levels:
    if level not in LEVELS:
      raise ValueError(f"unknown level {level!r}; known: {LEVELS}")
  if not 1 <= n_visible[0] <= n_visible[1]:
    raise ValueError(f"n_visible must be (low, high) with 1 <= low <= high, not {n_visible}")
  # Different streams per split so the two never share random state.
  rng = random.Random(2 * seed + (split == "eval"))
  draw_one = lambda: sample(rng, rng.choice(levels), rng.choice(arities),
                            n_visible=n_visible, n_hidden=n_hidden)
  parsed: dict = {}
  for problem in splits.draw(draw_one, split=split, n=n, eval_fraction=eval_fraction,
                             prompt=lambda p: p.fingerprint, key=lambda p: p.fingerprint,
                             reject=lambda p: len(p.text) > max_chars,
                             what=f"programs (levels {levels}, arities {arities})",
                             max_tries=max_tries):
    _check(problem, parsed)
    yield problem


# --- scoring --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Score:
  """One sample's outcome on a problem. `reason` says why it did not pass: one of
  interpreter.REASONS, or `wrong_output`; None when it passed."""
  parses: bool
  visible: bool  # right on every visible example
  hidden_fraction: float  # fraction of the hidden tests it gets right
  hidden: bool  # right on every hidden test
  reason: str | None

  @property
  def passed(self) -> bool:
    return self.visible and self.hidden


def score(problem: Problem, sample_text: str,
          limits: interp.Limits = interp.DEFAULT_LIMITS) -> Score:
  """Parses a model's sample once and runs it on the visible examples and hidden tests."""
  try:
    program = interp.parse(sample_text, problem.arity, limits)
  except interp.ProgramError as e:
    return Score(False, False, 0.0, False, e.reason)
  reason = None

  def right(examples) -> list[bool]:
    nonlocal reason
    out = []
    for x, y in examples:
      result = interp.evaluate(program, x, limits)
      out.append(result.value == y)
      if result.value != y and reason is None:
        reason = result.reason or "wrong_output"
    return out

  visible, hidden = right(problem.visible), right(problem.hidden)
  return Score(True, all(visible), sum(hidden) / len(hidden) if hidden else 1.0, all(hidden),
               reason)
