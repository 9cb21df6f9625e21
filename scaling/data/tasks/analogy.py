"""Analogy problems: letter strings and word analogies over an invented vocabulary.

Letter strings (Hofstadter's Copycat; Webb, Holyoak & Lu 2023) are written on one line, the
source pair, then the target with its second half left open:

  prompt `[a b c d] [a b c e] ; [i j k l] [`   answer `i j k m]`

The closing bracket is part of the answer, so a generated completion says where it ends.
Symbols are separated by single spaces. The source pair A -> B shows one transformation on a
4-letter run: successor (last letter +1), predecessor (first letter -1), extend (append the
next letter), remove_redundant (A repeats one letter), fix_alphabet (one letter of A is out
of place), sort (two letters of A are swapped). The target pair applies it to a run written
at a level: `basic` like the source, or generalised by `interval` (letters two apart),
`longer` (6-9 letters), `grouping` (each letter doubled), `distractor` (an `x`, or `0` for
numbers, after each letter), `numbers` (a=1 ... z=26) or `reversed` (a descending run, so
successor moves the last letter further down the alphabet), or several at once. These are
the conventions of Webb et al.'s problem set, which `load_webb` reads into the same format.

Word analogies use pseudo-words of CV and CVC syllables and regular morphology (`inflect`):

  prompt `tavo : tavos :: dax :`   answer ` daxes`

In both, the full text is `prompt + answer`. An item belongs to the eval split when a hash of
its prompt falls below `eval_fraction` (as for arithmetic), so the splits are disjoint.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Iterator

import numpy as np

from scaling.data.tasks import splits

TASKS = ("letter_string", "word_analogy")

TRANSFORMATIONS = ("successor", "predecessor", "extend", "remove_redundant",
                   "fix_alphabet", "sort")
# Generalisations change only the target pair; the source pair is always `basic`. Levels
# are `basic`, one generalisation, or several joined by `+` in this order
# (`interval+reversed`). Every transformation exists at every level.
GENERALIZATIONS = ("interval", "longer", "grouping", "distractor", "numbers", "reversed")
LEVELS = ("basic",) + GENERALIZATIONS

RELATIONS = ("plural", "comparative", "superlative", "past", "progressive", "agent",
             "negation")
WORD_LEVELS = ("basic", "longer")

BASIC_LENGTH = 4  # symbols in a basic run (before any letter is duplicated or appended)
LONGER_LENGTHS = (6, 9)  # inclusive range of run lengths at the `longer` level
ALPHABET = 26

_WEBB_TRANSFORMATIONS = {"succ": "successor", "pred": "predecessor", "add_letter": "extend",
                         "remove_redundant": "remove_redundant",
                         "fix_alphabet": "fix_alphabet", "sort": "sort"}
_WEBB_GENERALIZATIONS = {"larger_int": "interval", "longer_targ": "longer",
                         "group": "grouping", "interleaved": "distractor",
                         "letter2num": "numbers", "reverse": "reversed"}


@dataclasses.dataclass(frozen=True)
class Item:
  """One problem: the model reads `prompt` and should continue with `answer`."""
  prompt: str
  answer: str
  task: str
  type: str
  level: str

  @property
  def text(self) -> str:
    return self.prompt + self.answer


def in_eval_split(item: Item, eval_fraction: float) -> bool:
  """Deterministic membership of the held-out split, from the prompt's text alone."""
  return splits.in_eval_split(item.prompt, eval_fraction)


# --- letter strings -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Format:
  step: int = 1
  group: int = 1
  distractor: bool = False
  numbers: bool = False
  longer: bool = False


_BASIC = _Format()


@functools.lru_cache(maxsize=None)
def _format(level: str) -> _Format:
  # Cached: generation renders millions of sequences, each naming its level.
  if level == "basic":
    return _Format()
  names = level.split("+")
  unknown = [n for n in names if n not in GENERALIZATIONS]
  if unknown or len(set(names)) != len(names):
    raise ValueError(f"unknown letter-string level {level!r}; levels are 'basic' or "
                     f"'+'-joined names from {GENERALIZATIONS}")
  step = (2 if "interval" in names else 1) * (-1 if "reversed" in names else 1)
  return _Format(step=step, group=2 if "grouping" in names else 1,
                 distractor="distractor" in names, numbers="numbers" in names,
                 longer="longer" in names)


def canonical_level(generalizations) -> str:
  """The level name of a set of generalisations, in the order of GENERALIZATIONS."""
  names = set(generalizations)
  return "+".join(g for g in GENERALIZATIONS if g in names) or "basic"


_LETTERS = tuple(chr(ord("a") + u) for u in range(ALPHABET))


def render(units: list[int], level: str = "basic") -> list[str]:
  """Symbols of a sequence of letter ordinals (a=0) as written at `level`."""
  fmt = _format(level)
  if fmt == _BASIC:  # the common case, on the hot path of generation
    return [_LETTERS[u] for u in units]
  filler = "0" if fmt.numbers else "x"
  tokens = []
  for u in units:
    tokens += [str(u + 1) if fmt.numbers else chr(ord("a") + u)] * fmt.group
    if fmt.distractor:
      tokens += [filler] * fmt.group
  return tokens


def parse(tokens: list[str], level: str = "basic") -> list[int]:
  """Inverse of `render`: letter ordinals from symbols written at `level`."""
  fmt = _format(level)
  filler = "0" if fmt.numbers else "x"
  block = fmt.group * (2 if fmt.distractor else 1)
  if len(tokens) % block:
    raise ValueError(f"{tokens} is not a sequence at level {level!r}")
  units = []
  for i in range(0, len(tokens), block):
    head, tail = tokens[i:i + fmt.group], tokens[i + fmt.group:i + block]
    if len(set(head)) != 1 or any(t != filler for t in tail):
      raise ValueError(f"{tokens} is not a sequence at level {level!r}")
    sym = head[0]
    if fmt.numbers:
      if not (sym.isascii() and sym.isdigit()) or not 1 <= int(sym) <= ALPHABET:
        raise ValueError(f"{sym!r} is not a number from 1 to {ALPHABET}")
      units.append(int(sym) - 1)
    else:
      if len(sym) != 1 or not "a" <= sym <= "z":
        raise ValueError(f"{sym!r} is not a lowercase letter")
      units.append(ord(sym) - ord("a"))
  return units


def transform(transformation: str, units: list[int], step: int = 1) -> list[int]:
  """The transformed sequence of ordinals, for a run going `step` letters at a time."""
  units = list(units)
  if transformation == "successor":
    out = units[:-1] + [units[-1] + step]
  elif transformation == "predecessor":
    out = [units[0] - step] + units[1:]
  elif transformation == "extend":
    out = units + [units[-1] + step]
  elif transformation == "remove_redundant":
    dup = [i for i in range(len(units) - 1) if units[i] == units[i + 1]]
    if len(dup) != 1:
      raise ValueError(f"{units} has no single repeated letter")
    out = units[:dup[0]] + units[dup[0] + 1:]
  elif transformation == "fix_alphabet":
    # The run's start is what most positions agree on; the one odd position is rewritten.
    starts, counts = np.unique([u - i * step for i, u in enumerate(units)],
                               return_counts=True)
    if counts.max() < len(units) - 1:
      raise ValueError(f"{units} is not a run with one letter out of place")
    start = int(starts[counts.argmax()])
    out = [start + i * step for i in range(len(units))]
  elif transformation == "sort":
    out = sorted(units, reverse=step < 0)
  else:
    raise ValueError(f"unknown transformation {transformation!r}; known: {TRANSFORMATIONS}")
  if min(out) < 0 or max(out) >= ALPHABET:
    raise ValueError(f"{transformation} of {units} leaves the alphabet")
  return out


def apply(transformation: str, sequence: list[str], level: str = "basic") -> list[str]:
  """The answer's symbols for a target sequence written at `level` (`apply('successor',
  ['i', 'j', 'k', 'l'])` is `['i', 'j', 'k', 'm']`)."""
  return render(transform(transformation, parse(sequence, level), _format(level).step),
                level)


def letter_prompt(a: list[str], b: list[str], c: list[str]) -> str:
  """The prompt for `a : b :: c : ?`."""
  return f"[{' '.join(map(str, a))}] [{' '.join(map(str, b))}] ; [{' '.join(map(str, c))}] ["


def letter_answer(d: list[str]) -> str:
  """The completion that writes `d` and closes it."""
  return " ".join(map(str, d)) + "]"


def parse_letter_prompt(prompt: str) -> tuple[list[str], list[str], list[str]]:
  """The symbols of A, B and C of a letter-string prompt."""
  source, target = prompt.split(" ; ")
  a, b = source.strip()[1:-1].split("] [")
  return a.split(), b.split(), target.strip()[1:-3].split()


def parse_letter_answer(answer: str) -> list[str]:
  """The symbols of an answer (or generated completion), up to its closing bracket."""
  return answer.split("]")[0].split()


@functools.lru_cache(maxsize=None)
def _firsts(length: int, step: int) -> tuple[int, ...]:
  """First letters of the runs of `length` letters `step` apart that fit the alphabet."""
  return tuple(f for f in range(ALPHABET) if 0 <= f + (length - 1) * step < ALPHABET)


def _pair(rng: np.random.Generator, transformation: str, n: int, step: int
          ) -> tuple[list[int], list[int]]:
  """Input and output ordinals of one transformation on a random run of `n`."""
  # Built the way Webb et al. build theirs, from a run of letters, not with `transform`,
  # so that `apply` checks the stored answers independently.
  moves = transformation in ("successor", "predecessor", "extend")
  length = n + 1 if moves else n
  firsts = _firsts(length, step)
  if not firsts:
    raise ValueError(f"no run of {length} letters {step} apart fits the alphabet")
  first = firsts[int(rng.integers(len(firsts)))]
  run = [first + i * step for i in range(length)]
  if transformation == "successor":
    return run[:-1], run[:-2] + run[-1:]
  if transformation == "predecessor":
    return run[1:], run[:1] + run[2:]
  if transformation == "extend":
    return run[:-1], run
  if transformation == "remove_redundant":
    i = int(rng.integers(n))
    return run[:i + 1] + run[i:], run
  if transformation == "fix_alphabet":
    i = int(rng.integers(n))
    others = [u for u in range(ALPHABET) if u not in run]
    return run[:i] + [others[int(rng.integers(len(others)))]] + run[i + 1:], run
  if transformation == "sort":
    i, j = sorted(rng.choice(n, size=2, replace=False).tolist())
    shuffled = list(run)
    shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
    return shuffled, run
  raise ValueError(f"unknown transformation {transformation!r}; known: {TRANSFORMATIONS}")


def _one_swap(a: list[int], b: list[int]) -> bool:
  return sum(x != y for x, y in zip(a, b)) == 2


def sample_letter_string(rng: np.random.Generator, transformation: str, level: str) -> Item:
  """A random letter-string problem; the target pair differs from the source pair."""
  fmt = _format(level)
  while True:
    a, b = _pair(rng, transformation, BASIC_LENGTH, 1)
    n = (int(rng.integers(LONGER_LENGTHS[0], LONGER_LENGTHS[1] + 1)) if fmt.longer
         else BASIC_LENGTH)
    c, d = _pair(rng, transformation, n, fmt.step)
    source, target = render(a), render(c, level)
    if target == source:
      continue
    # One swap from a descending run can also be one swap from the ascending one, and then
    # nothing in the prompt says which way to sort.
    if transformation == "sort" and _one_swap(c, sorted(c, reverse=fmt.step > 0)):
      continue
    return Item(letter_prompt(source, render(b), target),
                letter_answer(render(d, level)), "letter_string", transformation, level)


# --- word analogies -------------------------------------------------------------------

_CONSONANTS = "bdfgklmnprstvxz"
_VOWELS = "aeiou"
_SUFFIXES = {"plural": "s", "comparative": "er", "superlative": "est", "past": "ed",
             "progressive": "ing", "agent": "ist"}


def inflect(stem: str, relation: str) -> str:
  """The regular form of `stem`: a suffix appended as is, except `es` for plurals of stems
  ending in s, x or z, and the prefix `un` for negation."""
  if relation == "negation":
    return "un" + stem
  if relation not in _SUFFIXES:
    raise ValueError(f"unknown relation {relation!r}; known: {RELATIONS}")
  if relation == "plural" and stem[-1] in "sxz":
    return stem + "es"
  return stem + _SUFFIXES[relation]


def pseudo_word(rng: np.random.Generator, syllables: int) -> str:
  """A word of CV or CVC syllables; it starts with a consonant, so never with `un`."""
  word = ""
  for _ in range(syllables):
    word += _CONSONANTS[rng.integers(len(_CONSONANTS))] + _VOWELS[rng.integers(len(_VOWELS))]
    if rng.random() < 0.5:
      word += _CONSONANTS[rng.integers(len(_CONSONANTS))]
  return word


def word_prompt(a: str, b: str, c: str) -> str:
  """The prompt for `a : b :: c : ?`; the answer is a space and then the word."""
  return f"{a} : {b} :: {c} :"


def sample_word_analogy(rng: np.random.Generator, relation: str, level: str) -> Item:
  """A random word analogy; at level `longer` the target stem has three syllables, not two."""
  if level not in WORD_LEVELS:
    raise ValueError(f"unknown word-analogy level {level!r}; known: {WORD_LEVELS}")
  while True:
    a, c = pseudo_word(rng, 2), pseudo_word(rng, 3 if level == "longer" else 2)
    if a != c:
      return Item(word_prompt(a, inflect(a, relation), c), " " + inflect(c, relation),
                  "word_analogy", relation, level)


# --- splits ---------------------------------------------------------------------------


def generate(split: str, n: int, *, seed: int, eval_fraction: float,
             task: str = "letter_string", types: tuple[str, ...] | None = None,
             levels: tuple[str, ...] | None = None,
             exclude: frozenset[str] = frozenset(),
             max_tries: int | None = None) -> Iterator[Item]:
  """`n` items of one split, each of a uniformly drawn type and level. Eval items are
  distinct; train items may repeat. Prompts in `exclude` are never produced: pass those of
  `load_webb()` when training a model that will be scored on them, as many of their
  problems lie in the space this generator draws from. With `max_tries`, stop quietly after
  that many draws (fewer items than `n` when the split's space is small)."""
  if split not in ("train", "eval"):
    raise ValueError(f"unknown split {split!r}")
  if task == "letter_string":
    types, levels, sample = types or TRANSFORMATIONS, levels or LEVELS, sample_letter_string
    for level in levels:
      _format(level)
  elif task == "word_analogy":
    types, levels, sample = types or RELATIONS, levels or WORD_LEVELS, sample_word_analogy
  else:
    raise ValueError(f"unknown task {task!r}; known: {TASKS}")
  # Separate streams per split and task so none shares random state with another.
  rng = np.random.default_rng([seed, int(split == "eval"), TASKS.index(task)])
  sample_one = lambda: sample(rng, types[int(rng.integers(len(types)))],
                              levels[int(rng.integers(len(levels)))])
  yield from splits.draw(sample_one, split=split, n=n, eval_fraction=eval_fraction,
                         prompt=lambda item: item.prompt, key=lambda item: item.prompt,
                         reject=lambda item: item.prompt in exclude,
                         what=f"{task} (types {types}, levels {levels})",
                         max_tries=max_tries)


# --- Webb, Holyoak & Lu (2023) --------------------------------------------------------


def default_webb_path() -> str:
  """`../shared/data/letter_string_webb/problems.json` from the repository root."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__)))))
  return os.path.normpath(os.path.join(root, "..", "shared", "data", "letter_string_webb",
                                       "problems.json"))


def load_webb(path: str | None = None) -> list[Item]:
  """Webb et al.'s published letter-string problems as Items (task `letter_string_webb`),
  in our prompt format. Problems with real-world words have level `realworld`."""
  path = path or default_webb_path()
  try:
    with open(path) as f:
      data = json.load(f)
  except FileNotFoundError:
    raise ValueError(f"{path}: no such file") from None
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
  items = []
  for name, problems in data.items():
    try:
      for ((a, b), (c, d)), trans, gen in zip(problems["prob"], problems["trans"],
                                             problems["gen"], strict=True):
        level = ("realworld" if "realworld" in gen
                 else canonical_level(_WEBB_GENERALIZATIONS[g] for g in gen))
        items.append(Item(letter_prompt(a, b, c), letter_answer(d), "letter_string_webb",
                          _WEBB_TRANSFORMATIONS[trans], level))
    except (KeyError, TypeError, ValueError) as e:
      raise ValueError(f"{path}: problem type {name!r} is malformed ({e!r})") from None
  return items
