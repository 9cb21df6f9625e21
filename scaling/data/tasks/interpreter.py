"""A small expression language for programs from input/output examples, and its interpreter.

A program is the body of `f(x)` or `f(x,y)`; it needs no spaces (whitespace is ignored):

  x*2+1    x<5?x*2:x-1    max(x,y)-min(x,y)    abs(x-5)%3    x<1?1:x*f(x-1)

Grammar, loosest binding first; binary operators are left-associative:

  expr    := compare ['?' expr ':' expr]     `c?a:b` is a when c != 0, else b (only one runs)
  compare := sum [cmp sum]                   cmp is < <= > >= == !=, giving 1 or 0; no chains
  sum     := term {('+' | '-') term}
  term    := unary {('*' | '//' | '%') unary}
  unary   := '-' unary | atom
  atom    := INT | NAME | '(' expr ')' | NAME '(' expr {',' expr} ')'

Literals are non-negative decimal integers (`-3` is unary minus on 3). `//` and `%` floor
like Python's. Names are the parameters, `x` then `y`, and the calls min(a,b), max(a,b),
abs(a) and f(...), which is the program itself, so programs can recurse. A text may start
with a header, `f(a,b)=`, that names the parameters instead (`f(n)=n*2`).

Model text is only ever read by our own tokenizer and recursive-descent parser into a tree of
frozen dataclasses, then run by a stack machine with its own call stack: no host code runs,
and no Python recursion grows with the program's recursion. Every limit in `Limits` is
enforced, and running a text gives a `Result`: a value, or one of REASONS.

`canonical` writes a program with the fewest parentheses the grammar needs, no whitespace,
parameters renamed by position to `x` and `y`, no header and literals without leading
zeros. Two texts have the same canonical form exactly when they parse to the same tree, so it
normalises spelling, never algebra: `x+1` and `1+x` differ.
"""

from __future__ import annotations

import dataclasses
import operator
import re
from typing import Sequence, Union

PARAMS = ("x", "y")  # parameter names by position, when a text has no header
BUILTINS = {"min": 2, "max": 2, "abs": 1}  # name -> arity
SELF = "f"
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
ARITHMETIC = ("+", "-", "*", "//", "%")

REASONS = (
    "syntax",            # not a text of the grammar, or a character outside it
    "too_long",          # more than max_chars characters
    "too_deep",          # nesting or parse-tree height above max_depth
    "name",              # an unknown variable or function
    "arity",             # wrong number of arguments to f, min, max or abs, or to the program
    "step_limit",        # more than max_steps instructions run
    "recursion_limit",   # more than max_recursion nested calls of f
    "overflow",          # a literal, input or intermediate value with |v| >= max_value
    "division_by_zero",  # `//` or `%` by 0
)


@dataclasses.dataclass(frozen=True)
class Limits:
  max_chars: int = 256
  max_depth: int = 50  # parenthesis/call/unary/conditional nesting, and parse-tree height
  max_steps: int = 10_000  # per run: one per node evaluated, one or two more per conditional
  max_recursion: int = 100  # calls of f active at once
  max_value: int = 10 ** 12  # every value v has |v| < max_value


DEFAULT_LIMITS = Limits()


@dataclasses.dataclass(frozen=True)
class Result:
  """A run's value, or the reason (one of REASONS) it has none."""
  value: int | None = None
  reason: str | None = None

  @property
  def ok(self) -> bool:
    return self.reason is None


class ProgramError(ValueError):
  """A text that is not a program; `reason` is one of REASONS."""

  def __init__(self, reason: str, message: str):
    super().__init__(f"{reason}: {message}")
    self.reason = reason


# --- syntax tree ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Lit:
  value: int


@dataclasses.dataclass(frozen=True)
class Var:
  index: int  # parameter position, so renamed parameters give equal trees


@dataclasses.dataclass(frozen=True)
class Neg:
  operand: Node


@dataclasses.dataclass(frozen=True)
class BinOp:
  op: str  # one of ARITHMETIC or COMPARISONS
  left: Node
  right: Node


@dataclasses.dataclass(frozen=True)
class Cond:
  test: Node
  then: Node
  orelse: Node


@dataclasses.dataclass(frozen=True)
class Call:
  name: str
  args: tuple


Node = Union[Lit, Var, Neg, BinOp, Cond, Call]


@dataclasses.dataclass(frozen=True)
class Program:
  """A parsed program: its arity, its tree, the tree's height (a leaf has height 0) and the
  stack-machine code that `evaluate` runs."""
  arity: int
  body: Node
  height: int = dataclasses.field(compare=False, default=0)
  code: tuple = dataclasses.field(compare=False, repr=False, default=())


# --- parsing --------------------------------------------------------------------------

_BINARY_LEVELS = (COMPARISONS, ("+", "-"), ("*", "//", "%"))  # loosest first

# Numbers, names, operators, whitespace, or any other character (a syntax error).
_TOKEN = r"([0-9]+)|([a-z]+)|(//|<=|>=|==|!=|[-+*%<>?:(),=])|([ \t\r\n]+)|(.)"


def _tokenize(text: str, limits: Limits) -> list[str]:
  tokens = []
  for m in re.finditer(_TOKEN, text, re.DOTALL):
    kind, token = m.lastindex, m.group()
    if kind == 1:
      # Checked before int() reads it, which is slow and limited for long digit strings.
      token = token.lstrip("0") or "0"
      if len(token) > len(str(limits.max_value)):
        raise ProgramError("overflow", "literal too large")
    elif kind == 5:
      raise ProgramError("syntax", f"unexpected {text[m.start():m.start() + 10]!r}")
    if kind != 4:
      tokens.append(token)
  return tokens


class _Parser:

  def __init__(self, tokens: list[str], names: dict[str, int], limits: Limits):
    self.tokens, self.names, self.limits = tokens, names, limits
    self.pos, self.depth = 0, 0

  def peek(self) -> str | None:
    return self.tokens[self.pos] if self.pos < len(self.tokens) else None

  def accept(self, token: str) -> bool:
    if self.peek() == token:
      self.pos += 1
      return True
    return False

  def expect(self, token: str) -> None:
    if not self.accept(token):
      found = self.peek()
      raise ProgramError("syntax", f"expected {token!r}, found "
                         f"{'the end' if found is None else repr(found)}")

  def enter(self) -> None:
    # Checked before recursing, so the nesting of the text never reaches Python's limit.
    self.depth += 1
    if self.depth > self.limits.max_depth:
      raise ProgramError("too_deep", f"nested deeper than {self.limits.max_depth}")

  def expr(self) -> Node:
    self.enter()
    node = self.binary(0)
    if self.accept("?"):
      then = self.expr()
      self.expect(":")
      node = Cond(node, then, self.expr())
    self.depth -= 1
    return node

  def binary(self, level: int) -> Node:
    """Operators of _BINARY_LEVELS[level] and tighter: left-associative, but comparisons
    do not chain."""
    if level == len(_BINARY_LEVELS):
      return self.unary()
    node, chained = self.binary(level + 1), False
    while self.peek() in _BINARY_LEVELS[level]:
      if chained and level == 0:
        raise ProgramError("syntax", "chained comparison; use parentheses")
      op, chained = self.tokens[self.pos], True
      self.pos += 1
      node = BinOp(op, node, self.binary(level + 1))
    return node

  def unary(self) -> Node:
    if not self.accept("-"):
      return self.atom()
    self.enter()
    node = Neg(self.unary())
    self.depth -= 1
    return node

  def atom(self) -> Node:
    token = self.peek()
    if token is None:
      raise ProgramError("syntax", "unexpected end")
    self.pos += 1
    if token.isdigit():
      value = int(token)
      if value >= self.limits.max_value:
        raise ProgramError("overflow", f"literal {value} too large")
      return Lit(value)
    if token == "(":
      node = self.expr()
      self.expect(")")
      return node
    if token.isalpha():
      if self.peek() == "(":
        return self.call(token)
      if token not in self.names:
        raise ProgramError("name", f"unknown variable {token!r}")
      return Var(self.names[token])
    raise ProgramError("syntax", f"unexpected {token!r}")

  def call(self, name: str) -> Node:
    if name != SELF and name not in BUILTINS:
      raise ProgramError("name", f"unknown function {name!r}")
    self.expect("(")
    args = [self.expr()]
    while self.accept(","):
      args.append(self.expr())
    self.expect(")")
    if name in BUILTINS and len(args) != BUILTINS[name]:
      raise ProgramError("arity", f"{name} takes {BUILTINS[name]} arguments, not {len(args)}")
    return Call(name, tuple(args))


def _header(tokens: list[str]) -> list[str] | None:
  """The parameter names of a leading `f(a,b)=`, which is then removed from `tokens`."""
  if tokens[:2] != [SELF, "("] or "=" not in tokens:
    return None
  end = tokens.index("=")
  inner = tokens[2:end - 1]
  if (end < 4 or tokens[end - 1] != ")" or len(inner) % 2 == 0
      or inner[1::2] != [","] * (len(inner) // 2)):
    raise ProgramError("syntax", "malformed header")
  names = inner[::2]
  if len(set(names)) != len(names) or any(
      not n.isalpha() or n == SELF or n in BUILTINS for n in names):
    raise ProgramError("syntax", f"bad parameter names {names}")
  del tokens[:end + 1]
  return names


def parse(text: str, arity: int | None = None, limits: Limits = DEFAULT_LIMITS) -> Program:
  """The program a text spells, for `arity` parameters (by default, as a header says or as
  many of x, y as it uses); raises ProgramError with one of REASONS otherwise."""
  if not isinstance(text, str):
    raise ProgramError("syntax", f"a program is text, not {type(text).__name__}")
  if arity is not None and not 1 <= arity <= len(PARAMS):
    raise ProgramError("arity", f"programs take 1 to {len(PARAMS)} arguments, not {arity}")
  if len(text) > limits.max_chars:
    raise ProgramError("too_long", f"{len(text)} characters > {limits.max_chars}")
  tokens = _tokenize(text, limits)
  names = _header(tokens)
  header = names is not None
  if header and arity is not None and len(names) != arity:
    raise ProgramError("arity", f"header has {len(names)} parameters, not {arity}")
  if names is None:
    names = list(PARAMS[:arity] if arity is not None else PARAMS)
  if not 1 <= len(names) <= len(PARAMS):
    raise ProgramError("arity", f"programs take 1 to {len(PARAMS)} arguments, not {len(names)}")
  parser = _Parser(tokens, {n: i for i, n in enumerate(names)}, limits)
  try:
    body = parser.expr()
    if parser.peek() is not None:
      raise ProgramError("syntax", f"unexpected {parser.peek()!r}")
    if arity is None:
      arity = len(names) if header else 1 + (PARAMS[1] in tokens)
    code: list = []
    height = _emit(body, code, arity)
    if height > limits.max_depth:
      raise ProgramError("too_deep", f"parse tree taller than {limits.max_depth}")
    code.append((RET, 0))
  except RecursionError:  # only with limits far above the defaults
    raise ProgramError("too_deep", "nested too deep for this host") from None
  return Program(arity, body, height, tuple(code))


# --- stack machine --------------------------------------------------------------------

# Opcodes, each with one argument: push a literal or a parameter; apply a function to the top
# value or two (BINARY and DIVIDE pop b, then a, and push f(a, b)); jump if zero, or always;
# call f; and return, from a call of f or from the whole run, at the end of the code.
CONST, ARG, UNARY, BINARY, DIVIDE, JZ, JMP, CALL, RET = range(9)
_FUNCTIONS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv,
              "%": operator.mod, "min": min, "max": max, "abs": abs,
              "<": lambda a, b: int(a < b), "<=": lambda a, b: int(a <= b),
              ">": lambda a, b: int(a > b), ">=": lambda a, b: int(a >= b),
              "==": lambda a, b: int(a == b), "!=": lambda a, b: int(a != b)}


def _emit(node: Node, code: list, arity: int) -> int:
  """Appends the code of `node` to `code` and returns the tree's height. The parser's
  nesting limit and the short texts allowed keep this recursion shallow."""
  if isinstance(node, Lit):
    code.append((CONST, node.value))
    return 0
  if isinstance(node, Var):
    if node.index >= arity:
      raise ProgramError("name", f"variable {PARAMS[node.index]!r} of a {arity}-ary program")
    code.append((ARG, node.index))
    return 0
  if isinstance(node, Neg):
    h = _emit(node.operand, code, arity)
    code.append((UNARY, operator.neg))
  elif isinstance(node, BinOp):
    h = max(_emit(node.left, code, arity), _emit(node.right, code, arity))
    code.append((DIVIDE if node.op in ("//", "%") else BINARY, _FUNCTIONS[node.op]))
  elif isinstance(node, Cond):
    h = _emit(node.test, code, arity)
    jz = len(code)
    code.append(None)
    h = max(h, _emit(node.then, code, arity))
    jmp = len(code)
    code.append(None)
    code[jz] = (JZ, len(code))
    h = max(h, _emit(node.orelse, code, arity))
    code[jmp] = (JMP, len(code))
  elif isinstance(node, Call):
    if node.name == SELF and len(node.args) != arity:
      raise ProgramError("arity", f"f takes {arity} arguments, not {len(node.args)}")
    h = max(_emit(arg, code, arity) for arg in node.args)
    code.append((CALL, arity) if node.name == SELF else
                (UNARY if len(node.args) == 1 else BINARY, _FUNCTIONS[node.name]))
  else:
    raise TypeError(f"not a syntax tree node: {node!r}")
  return h + 1


def evaluate(program: Program, args: Sequence[int], limits: Limits = DEFAULT_LIMITS
             ) -> Result:
  """Runs `program` on integer `args` within `limits`."""
  if len(args) != program.arity:
    return Result(reason="arity")
  env, bound = tuple(map(operator.index, args)), limits.max_value
  for a in env:
    if not -bound < a < bound:
      return Result(reason="overflow")
  code, stack, frames = program.code, [], []
  pc, budget = 0, limits.max_steps
  while True:
    op, arg = code[pc]
    pc += 1
    if op == RET:
      if not frames:
        return Result(stack.pop())
      pc, env = frames.pop()
      continue
    budget -= 1
    if budget < 0:
      return Result(reason="step_limit")
    if op == ARG:
      stack.append(env[arg])
    elif op == CONST:
      stack.append(arg)
    elif op == BINARY or op == DIVIDE:
      b = stack.pop()
      if op == DIVIDE and b == 0:
        return Result(reason="division_by_zero")
      v = stack[-1] = arg(stack[-1], b)
      # Only +, - and * can leave the bound, and one step past it is still cheap.
      if not -bound < v < bound:
        return Result(reason="overflow")
    elif op == JZ:
      if not stack.pop():
        pc = arg
    elif op == JMP:
      pc = arg
    elif op == UNARY:
      stack[-1] = arg(stack[-1])
    else:  # CALL
      if len(frames) >= limits.max_recursion:
        return Result(reason="recursion_limit")
      frames.append((pc, env))
      env = tuple(stack[-arg:])
      del stack[-arg:]
      pc = 0


def run(text: str, args: Sequence[int], limits: Limits = DEFAULT_LIMITS) -> Result:
  """Parses `text` as a program of len(args) parameters and runs it; never raises for any
  text."""
  try:
    program = parse(text, len(args), limits)
  except ProgramError as e:
    return Result(reason=e.reason)
  return evaluate(program, args, limits)


# --- canonical form -------------------------------------------------------------------

# Binding strength, loosest first: conditionals, each of _BINARY_LEVELS, unary minus, atoms.
_COND, _COMPARE = 0, 1
_UNARY = _COMPARE + len(_BINARY_LEVELS)
_ATOM = _UNARY + 1
_PRECEDENCE = {op: _COMPARE + i for i, ops in enumerate(_BINARY_LEVELS) for op in ops}


def _at(node: Node, least: int) -> str:
  """Text of `node` as an operand that must bind at least as tightly as `least`."""
  text, strength = _show(node)
  return text if strength >= least else f"({text})"


def _show(node: Node) -> tuple[str, int]:
  """Text of `node` and how tightly it binds."""
  if isinstance(node, Lit):
    return str(node.value), _ATOM if node.value >= 0 else _UNARY
  if isinstance(node, Var):
    return PARAMS[node.index], _ATOM
  if isinstance(node, Neg):
    return "-" + _at(node.operand, _UNARY), _UNARY
  if isinstance(node, BinOp):
    p = _PRECEDENCE[node.op]
    # Left-associative: a right operand of the same strength needs parentheses; comparisons
    # do not chain, so neither of their operands may be one.
    left = _at(node.left, p + 1 if p == _COMPARE else p)
    return left + node.op + _at(node.right, p + 1), p
  if isinstance(node, Cond):
    return (f"{_at(node.test, _COMPARE)}?{_at(node.then, _COND)}:{_at(node.orelse, _COND)}",
            _COND)
  if isinstance(node, Call):
    return f"{node.name}({','.join(_at(a, _COND) for a in node.args)})", _ATOM
  raise TypeError(f"not a syntax tree node: {node!r}")


def canonical(program: Program | Node | str) -> str:
  """The canonical text of a program, a tree or a text (see the module docstring); a text
  that does not parse raises ProgramError."""
  if isinstance(program, str):
    program = parse(program)
  return _show(program.body if isinstance(program, Program) else program)[0]
