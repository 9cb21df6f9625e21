"""The toolkit's text suites as local `lm-evaluation-harness` tasks (JSONL + YAML, offline).

One task per suite task (`scaling_arithmetic`, `scaling_letter_string`,
`scaling_word_analogy`), scored as `scaling eval` scores them: the greedy continuation of
the prompt after <s>, up to </s>, compared with the answer after stripping surrounding
whitespace. Run them with

  lm_eval --model hf --model_args pretrained=MODEL,add_bos_token=True \\
      --include_path DIR --tasks scaling_arithmetic --batch_size 1
"""

from __future__ import annotations

import json
import os

from scaling import files
from scaling.evals import suites

PREFIX = "scaling_"
# The same items as `arithmetic`, reported by their number of carries.
SKIPPED = ("arithmetic_carries",)

TEMPLATE = """\
# Written by `scaling lm-eval-tasks`: {n} held-out items of the toolkit's `{task}` task.
task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: prompt
doc_to_target: answer
generation_kwargs:
  until: ["</s>"]
  do_sample: false
  max_gen_toks: {max_gen_toks}
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    regexes_to_ignore: ["^\\\\s+", "\\\\s+$"]
metadata:
  version: 1.0
"""


def write(data_cfg, out: str, *, suite_names=("arithmetic", "analogy"), n: int,
          tokenizer=None, final: str | None = None) -> list[str]:
  """Writes one task per suite task into `out` (to be moved to `final`, which the task
  files name their data by); returns the task names.

  `max_gen_toks` is the toolkit's longest budget (answer tokens + 2) when `tokenizer` is
  given, else the longest answer's characters + 2 (each character at most one token
  beyond byte fallback).
  """
  items = suites.build(list(suite_names), data_cfg, n_per_subset=n, task_files=[])
  by_task: dict[str, list] = {}
  for item in items:
    if item.task not in SKIPPED and not item.choices:
      by_task.setdefault(item.task, []).append(item)
  os.makedirs(out, exist_ok=True)
  names = []
  for task, task_items in sorted(by_task.items()):
    name = f"{PREFIX}{task}"
    data = os.path.abspath(os.path.join(final or out, f"{name}.jsonl"))
    lines = [json.dumps({"prompt": it.prompt, "answer": it.answer, "subset": it.subset})
             for it in task_items]
    files.write_atomic(os.path.join(out, f"{name}.jsonl"), "\n".join(lines) + "\n")
    answers = [it.answer for it in task_items]
    lengths = (map(len, tokenizer.encode_batch(answers)) if tokenizer is not None
               else (len(a.encode()) for a in answers))
    files.write_atomic(os.path.join(out, f"{name}.yaml"), TEMPLATE.format(
        n=len(task_items), task=task, name=name, data=json.dumps(data),
        max_gen_toks=max(lengths) + 2))
    names.append(name)
  return names
