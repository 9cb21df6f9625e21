"""Training data as a weighted mixture of task generators, in a size-independent order.

Every record is `question` (the prompt), `answer` (what the model should continue with),
`task` and `subset` (e.g. `+3d` for 3-digit addition, `successor/basic` for a letter
string, `depth2` for a program, `len8-40` for a repeated string), so evaluations can be
broken down the same way whatever the mixture. A program record's answer is its reference program; the split by function
(`programs`) keeps every held-out function, however spelled, out of training.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterator

import numpy as np

from scaling.data.tasks import analogy, arithmetic, programs, repeats

TASKS = ("arithmetic", "letter_string", "word_analogy", "program", "repeat")


@dataclasses.dataclass(frozen=True)
class Record:
  question: str
  answer: str
  task: str
  subset: str


def arithmetic_subset(p: arithmetic.Problem) -> str:
  return f"{p.op}{max(len(str(p.a)), len(str(p.b)))}d"


def program_problems(split: str, n: int, *, seed: int, params, levels=None,
                     max_tries: int | None = None) -> Iterator[programs.Problem]:
  """Program problems of the levels, arities and length the `data` section names (or of
  `levels`), as the training mixture and the code suite both draw them."""
  return programs.generate(split, n, seed=seed, eval_fraction=params.eval_fraction,
                           levels=tuple(levels or params.program_levels),
                           arities=tuple(params.program_arities),
                           max_chars=params.program_max_chars, max_tries=max_tries)


_ARITHMETIC_QUESTION = re.compile(r"\s*(\d+)\s*([-+*])\s*(\d+)\s*=\s*")


def outside_training(prompt: str, params) -> str | None:
  """What puts `prompt` outside the problems the mixture of `params` (a run's `data`
  section) trained on, or None where it may lie inside: an arithmetic question with an
  operation or operand lengths the generator never drew."""
  if "arithmetic" not in dict(params.mixture):
    return None
  found = _ARITHMETIC_QUESTION.fullmatch(prompt)
  if found is None:
    return None
  a, op, b = found.groups()
  if op not in params.ops:
    return f"the operation {op!r} (trained on {' '.join(params.ops)}: data.ops)"
  digits = sorted({len(str(int(a))), len(str(int(b)))})
  low, high = params.min_digits, params.max_digits
  if digits[0] < low or digits[-1] > high:
    outside = [n for n in digits if not low <= n <= high]
    span = f"{low}" if low == high else f"{low} to {high}"
    return (f"{' and '.join(map(str, outside))}-digit operands (trained on {span} digits: "
            f"data.min_digits={low}, data.max_digits={high})")
  return None


def task_records(task: str, split: str, n: int, *, seed: int, params) -> Iterator[Record]:
  """`n` records of one task and split; `params` is the run's `data` config section."""
  if task == "arithmetic":
    for p in arithmetic.generate(split, n, seed=seed, ops=tuple(params.ops),
                                 min_digits=params.min_digits, max_digits=params.max_digits,
                                 eval_fraction=params.eval_fraction):
      yield Record(p.question, p.answer(params.reverse_answer), task, arithmetic_subset(p))
  elif task in ("letter_string", "word_analogy"):
    levels = tuple(params.letter_levels if task == "letter_string" else params.word_levels)
    for item in analogy.generate(split, n, seed=seed, eval_fraction=params.eval_fraction,
                                 task=task, levels=levels):
      yield Record(item.prompt, item.answer, task, f"{item.type}/{item.level}")
  elif task == "program":
    for p in program_problems(split, n, seed=seed, params=params):
      yield Record(p.prompt, p.answer, task, p.level)
  elif task == "repeat":
    for p in repeats.generate(split, n, seed=seed, eval_fraction=params.eval_fraction):
      yield Record(p.question, p.answer, task,
                   f"len{repeats.MIN_LETTERS}-{repeats.MAX_LETTERS}")
  else:
    raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")


def train_records(n: int, *, seed: int, params) -> Iterator[Record]:
  """`n` training records; each draws its task by the mixture weights."""
  names = [name for name, _ in params.mixture]
  weights = np.asarray([w for _, w in params.mixture], float)
  choice = np.random.default_rng([seed, 1234]).choice(len(names), size=n, p=weights / weights.sum())
  # One stream per task, long enough for any draw of the mixture.
  streams = [task_records(name, "train", int((choice == i).sum()), seed=seed, params=params)
             for i, name in enumerate(names)]
  for i in choice:
    yield next(streams[i])


def eval_records(n_per_task: int, *, seed: int, params) -> Iterator[Record]:
  """`n_per_task` held-out records of every task, interleaved so any prefix covers all."""
  streams = [task_records(name, "eval", n_per_task, seed=seed, params=params)
             for name, _ in params.mixture]
  for _ in range(n_per_task):
    for stream in streams:
      yield next(stream)
