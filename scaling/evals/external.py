"""Loaders for externally authored benchmarks: BIG-bench JSON tasks and `questions-words.txt`.

These sets are for evaluation only; nothing here may feed training data.
"""

from __future__ import annotations

import dataclasses
import json
import os

from scaling.data.tasks import analogy

# BIG-bench's own defaults when a task does not set its prefixes.
_INPUT_PREFIX = "\nQ: "
_OUTPUT_PREFIX = "\nA: "


@dataclasses.dataclass(frozen=True)
class Example:
  """One BIG-bench example. `choices`/`choice_scores` come from `target_scores` (multiple
  choice) and are None for free-response examples."""
  input: str
  targets: list[str]
  choices: list[str] | None = None
  choice_scores: list[float] | None = None

  @property
  def correct_index(self) -> int | None:
    """Index of the best-scored choice (the first of equals), or None without choices."""
    if not self.choice_scores:
      return None
    return self.choice_scores.index(max(self.choice_scores))


@dataclasses.dataclass(frozen=True)
class Task:
  """A BIG-bench JSON task."""
  name: str
  examples: list[Example]
  metrics: list[str]
  preferred_score: str | None
  description: str = ""
  task_prefix: str = ""
  input_prefix: str = _INPUT_PREFIX
  output_prefix: str = _OUTPUT_PREFIX
  output_regex: str | None = None

  def prompt(self, example: Example) -> str:
    """The zero-shot prompt for `example`, with the task's prefixes."""
    return f"{self.task_prefix}{self.input_prefix}{example.input}{self.output_prefix}"


def _read_json(path: str):
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except FileNotFoundError:
    raise ValueError(f"{path}: no such file") from None
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    detail = (f"{e.msg} at line {e.lineno}, column {e.colno}"
              if isinstance(e, json.JSONDecodeError) else str(e))
    raise ValueError(f"{path}: not valid JSON ({detail})") from None


def _task_file(path: str) -> str:
  return os.path.join(path, "task.json") if os.path.isdir(path) else path


def _example(raw, path: str, i: int) -> Example:
  where = f"{path}: example {i}"
  if not isinstance(raw, dict):
    raise ValueError(f"{where} is not an object")
  if not isinstance(raw.get("input"), str):
    raise ValueError(f"{where} has no 'input' string")
  choices = scores = None
  if "target_scores" in raw:
    ts = raw["target_scores"]
    if (not isinstance(ts, dict) or not ts
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in ts.values())):
      raise ValueError(f"{where}: 'target_scores' must map choices to numbers")
    choices, scores = list(ts), [float(v) for v in ts.values()]
  target = raw.get("target")
  if target is None:
    if choices is None:
      raise ValueError(f"{where} has neither 'target' nor 'target_scores'")
    targets = [c for c, s in zip(choices, scores) if s == max(scores)]
  elif isinstance(target, str):
    targets = [target]
  elif isinstance(target, list) and target and all(isinstance(t, str) for t in target):
    targets = list(target)
  else:
    raise ValueError(f"{where}: 'target' must be a string or a list of strings")
  return Example(raw["input"], targets, choices, scores)


def load_bigbench_task(path: str) -> Task:
  """One BIG-bench JSON task, from its `task.json` or the folder holding it."""
  path = _task_file(path)
  data = _read_json(path)
  if not isinstance(data, dict):
    raise ValueError(f"{path}: expected a JSON object at the top level")
  raw = data.get("examples")
  if not isinstance(raw, list) or not raw:
    hint = " (a task made of subtasks? load its folder with load_bigbench_tasks)"
    raise ValueError(f"{path}: no 'examples' list{hint if 'examples' not in data else ''}")
  metrics = data.get("metrics", [])
  if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
    raise ValueError(f"{path}: 'metrics' must be a list of strings")
  return Task(
      name=str(data.get("name", os.path.basename(os.path.dirname(path)))),
      examples=[_example(e, path, i) for i, e in enumerate(raw)],
      metrics=metrics,
      preferred_score=data.get("preferred_score"),
      description=str(data.get("description", "")),
      task_prefix=str(data.get("task_prefix", "")),
      input_prefix=str(data.get("example_input_prefix", _INPUT_PREFIX)),
      output_prefix=str(data.get("example_output_prefix", _OUTPUT_PREFIX)),
      output_regex=data.get("output_regex"))


def load_bigbench_tasks(folder: str) -> list[Task]:
  """A BIG-bench task folder: its own examples, if any, then each subtask (a subfolder with
  a `task.json`) in name order."""
  if not os.path.isdir(folder):
    raise ValueError(f"{folder}: not a folder")
  tasks = []
  top = os.path.join(folder, "task.json")
  if os.path.exists(top) and "examples" in _read_json(top):
    tasks.append(load_bigbench_task(top))
  for name in sorted(os.listdir(folder)):
    sub = os.path.join(folder, name, "task.json")
    if os.path.isfile(sub):
      tasks.append(load_bigbench_task(sub))
  if not tasks:
    raise ValueError(f"{folder}: no BIG-bench task with examples")
  return tasks


def load_word_analogies(path: str) -> list[analogy.Item]:
  """Questions of a `questions-words.txt` file (`: section` lines, then `a b c d` lines) as
  word-analogy Items: type = section, level = `syntactic` for `gram*` sections else
  `semantic`, task = `google_analogy`. Words keep their capitalisation."""
  items, section = [], None
  try:
    with open(path, encoding="utf-8") as f:
      lines = f.read().splitlines()
  except FileNotFoundError:
    raise ValueError(f"{path}: no such file") from None
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    if line.startswith(":"):
      section = line[1:].strip()
      continue
    words = line.split()
    if section is None or len(words) != 4:
      raise ValueError(f"{path}:{number}: expected a ': section' line or four words, "
                       f"got {line!r}")
    a, b, c, d = words
    level = "syntactic" if section.startswith("gram") else "semantic"
    items.append(analogy.Item(analogy.word_prompt(a, b, c), " " + d, "google_analogy",
                              section, level))
  return items
