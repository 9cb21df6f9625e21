"""Benchmark items: generated held-out suites and external task files, in one form.

Every item is a prompt, the answer a model should continue it with, the task and subset
it is reported under, and, for multiple choice, the choices and the correct one.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import sys

from scaling import files
from scaling.errors import UserError
from scaling.data import builders
from scaling.data.tasks import analogy, arithmetic, mixture, splits
from scaling.evals import commitment, external
from scaling.evals import items as eval_items
from scaling.evals.items import EvalItem, max_draws  # noqa: F401  (the module's API)

# Scored by comparing text with the answer. `commitment`: additions whose first answer
# digit is forced wrong (scaling.evals.commitment).
TEXT_SUITES = ("arithmetic", "analogy", "webb", "commitment")
# `code` is scored by running the model's programs: see scaling.evals.code.
SUITES = (*TEXT_SUITES, "code")


def _carries(a: int, b: int) -> int:
  """Number of carries when adding two non-negative integers digit by digit."""
  carries = carry = 0
  while a or b:
    carry = int(a % 10 + b % 10 + carry >= 10)
    carries += carry
    a, b = a // 10, b // 10
  return carries


def arithmetic_items(data_cfg, n_per_subset: int, seed: int = 0) -> list[EvalItem]:
  """Held-out problems of every trained operation and digit count, up to n per subset.

  Addition is also reported by its number of carries (`carries=k`), where models tend
  to differ most. A subset whose held-out space is small gives fewer than n items.
  """
  items = []
  for op in data_cfg.ops:
    for digits in range(data_cfg.min_digits, data_cfg.max_digits + 1):
      for p in arithmetic.generate("eval", n_per_subset, seed=seed, ops=(op,),
                                   min_digits=digits, max_digits=digits,
                                   eval_fraction=data_cfg.eval_fraction,
                                   max_tries=max_draws(n_per_subset, data_cfg.eval_fraction)):
        answer = p.answer(data_cfg.reverse_answer)
        items.append(EvalItem(p.question, answer, "arithmetic", mixture.arithmetic_subset(p)))
        if op == "+":
          items.append(EvalItem(p.question, answer, "arithmetic_carries",
                                f"carries={_carries(p.a, p.b)}"))
  return items


def analogy_items(data_cfg, n_per_subset: int, seed: int = 0) -> list[EvalItem]:
  """Held-out letter-string items per transformation and level; word analogies per relation."""
  items = []
  for task, types, levels in (
      ("letter_string", analogy.TRANSFORMATIONS, tuple(data_cfg.letter_levels)),
      ("word_analogy", analogy.RELATIONS, tuple(data_cfg.word_levels))):
    for kind in types:
      for level in levels:
        for item in analogy.generate("eval", n_per_subset, seed=seed, task=task,
                                     types=(kind,), levels=(level,),
                                     eval_fraction=data_cfg.eval_fraction,
                                     max_tries=max_draws(n_per_subset, data_cfg.eval_fraction)):
          items.append(EvalItem(item.prompt, item.answer, task, f"{kind}/{level}"))
  return items


def webb_items(path: str | None = None) -> list[EvalItem]:
  """Webb, Holyoak & Lu's published letter-string problems, in our prompt format."""
  try:
    problems = analogy.load_webb(path)
  except ValueError as e:
    raise UserError(f"the webb suite needs the published problems: {e}") from None
  return [EvalItem(p.prompt, p.answer, "letter_string_webb", f"{p.type}/{p.level}")
          for p in problems]


def bigbench_items(path: str) -> list[EvalItem]:
  """Items of a BIG-bench JSON task file, or of every task under a folder."""
  if not os.path.exists(path):
    raise UserError(f"task file not found: {path}")
  try:
    if os.path.isdir(path) and not os.path.exists(os.path.join(path, "task.json")):
      tasks = external.load_bigbench_tasks(path)
    else:
      tasks = [external.load_bigbench_task(path)]
      if not tasks[0].examples:
        tasks = external.load_bigbench_tasks(os.path.dirname(path) if os.path.isfile(path) else path)
  except ValueError as e:
    raise UserError(str(e)) from None
  items = []
  for task in tasks:
    for ex in task.examples:
      correct = ex.correct_index
      items.append(EvalItem(task.prompt(ex), ex.targets[0], f"bigbench/{task.name}", "all",
                            tuple(ex.choices) if ex.choices else None, correct))
  return items


GENERATED = {"arithmetic": arithmetic_items, "analogy": analogy_items,
             "commitment": commitment.items}
# The `data` fields the generated suites read.
_SUITE_FIELDS = ("ops", "min_digits", "max_digits", "reverse_answer", "eval_fraction",
                 "letter_levels", "word_levels")


@functools.cache
def _generators_digest() -> str:
  """A hash of the code that draws the generated suites: a changed generator never reads
  items cached by an older one."""
  h = hashlib.sha256()
  for module in (analogy, arithmetic, mixture, splits, commitment, eval_items,
                 sys.modules[__name__]):
    with open(module.__file__, "rb") as f:
      h.update(f.read())
  return h.hexdigest()[:12]


def generated_items(suite: str, data_cfg, n_per_subset: int) -> list[EvalItem]:
  """The held-out items of a generated suite, cached beside the prepared data.

  Drawing them costs seconds (a letter-string transformation has a few hundred held-out
  prompts, and finding them rejects thousands of draws), the same for every model of a
  sweep, so the first eval writes `<data_dir>/suites/<suite>-<hash>.json` and the others
  read it. A cache that cannot be written or read is skipped.
  """
  key = files.digest({"suite": suite, "n": n_per_subset, "code": _generators_digest(),
                      **{k: files.plain(data_cfg[k]) for k in _SUITE_FIELDS}})
  path = os.path.join(builders.resolve_data_dir(data_cfg), "suites", f"{suite}-{key}.json")
  try:
    with open(path) as f:
      return [EvalItem(**record) for record in json.load(f)]
  except (OSError, ValueError, TypeError):
    pass
  items = GENERATED[suite](data_cfg, n_per_subset)
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    files.write_atomic(path, json.dumps([dataclasses.asdict(i) for i in items]))
  except OSError:
    pass
  return items


def build(suites: list[str], data_cfg, *, n_per_subset: int, task_files: list[str]):
  """All items of the named text suites (TEXT_SUITES) and task files."""
  items = []
  for suite in suites:
    if suite not in TEXT_SUITES:
      raise UserError(f"unknown text suite {suite!r}; known: {', '.join(TEXT_SUITES)}")
    items += webb_items() if suite == "webb" else generated_items(suite, data_cfg,
                                                                  n_per_subset)
  for path in task_files:
    items += bigbench_items(path)
  return items


# Rows of the eval table whose item count is not `-n`'s, and why.
GENERATED_TASKS = ("arithmetic", "letter_string", "word_analogy")
SPLITS = {"arithmetic_carries": "the addition items, split by their number of carries"}
WHOLE = {"bigbench/": "a task file, scored whole", "letter_string_webb": "the published "
         "problems, scored whole"}


def why_not_n(task: str, subset: str, n: int, requested: int) -> str:
  """Why a (task, subset) row of a text suite holds `n` items when `requested` were asked
  for per subset; '' when it holds them, and for other tasks (image samples)."""
  whole = next((why for prefix, why in WHOLE.items() if task.startswith(prefix)), None)
  if whole is None and task not in SPLITS and task not in GENERATED_TASKS:
    return ""
  if subset == "all":
    return "every subset together"
  if whole or task in SPLITS:
    return whole or SPLITS[task]
  if n < requested:
    return f"only {n} held-out items drawn: the subset's problem space is small"
  return ""
