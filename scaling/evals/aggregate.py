"""Aggregate per-item scores into `eval.json` and a readable table."""

from __future__ import annotations

import os

import numpy as np

from scaling import files
from scaling.evals import metrics, suites
from scaling.numbers import ZERO_WIDTH, fmt, interval, zero_width

# Shown in the table, in this order; eval.json holds every metric.
TABLE_METRICS = ("exact_match", "char_accuracy", "answer_logprob", "predicted_exact_match",
                 "ece", "mc_accuracy", "pass_at_1", "pass_at_10", "filtered_pass_at_1",
                 "class_accuracy", "fd", "kid", "mse", "accuracy", "recall_at_1", "recall_at_5",
                 "correct_prob", "motion_residual", "concentration", "log_prob", "si_snr",
                 "mel_distance", "bitrate", "perplexity", "dead")


def item_metrics(item, out) -> dict[str, float]:
  """Every metric of one item, from its greedy answer and teacher-forced log-probs."""
  target, pred = item.answer.strip(), out.prediction.strip()
  row = {
      "exact_match": metrics.exact_match(pred, target),
      "char_accuracy": float(np.mean(metrics.per_position_accuracy([pred], [target]))),
      "edit_distance": metrics.normalized_edit_distance(pred, target),
      "answer_logprob": metrics.answer_logprob(out.answer_token_logprobs),
      "mean_token_prob": metrics.mean_token_prob(out.answer_token_logprobs),
      "predicted_exact_match": metrics.predicted_exact_match(out.answer_token_logprobs),
  }
  if out.prediction_logprob is not None:
    # The model's probability of its own greedy answer: calibrated when it equals the
    # chance that answer is right (`ece`).
    row["answer_confidence"] = float(np.exp(out.prediction_logprob))
  if item.task.startswith("arithmetic"):
    row["digit_accuracy"] = metrics.digit_accuracy(pred, target)
  if out.choice_logprobs is not None and item.correct is not None:
    probs = metrics.choice_probs(out.choice_logprobs)
    row["mc_accuracy"] = metrics.multiple_choice_accuracy(out.choice_logprobs, item.correct)
    row["brier"] = metrics.brier_score(probs, item.correct)
  return row


def _chance(task: str, metric: str, choices: list[int], targets: list[str]) -> float | None:
  if metric == "exact_match" and targets:
    return float(np.mean([metrics.chance_exact_match(t) for t in targets]))
  if metric == "digit_accuracy":
    return metrics.DIGIT_CHANCE
  if metric == "mc_accuracy" and choices:
    return metrics.chance_multiple_choice(choices)
  if metric == "brier" and choices:
    return metrics.chance_brier(choices)
  return None


def aggregate(items, outputs, *, n_resamples: int = 1000) -> dict:
  """{task: {subset: {"n", "metrics": {name: {mean, ci_low, ci_high, n}}, "chance"}}}.

  Each task also gets an `all` subset over its items.
  """
  return summarize([(item, item_metrics(item, out)) for item, out in zip(items, outputs)],
                   n_resamples=n_resamples)


def summarize(scored, *, n_resamples: int = 1000) -> dict:
  """`aggregate`'s result from (item, {metric: value}) pairs: items are grouped by their
  `task` and `subset` (plus `all`), and each metric gets its mean and bootstrap interval."""
  rows: dict[str, dict[str, list]] = {}
  for item, per_item in scored:
    for subset in dict.fromkeys((item.subset, "all")):
      rows.setdefault(item.task, {}).setdefault(subset, []).append((item, per_item))
  result = {}
  for task, subsets in rows.items():
    result[task] = {}
    for subset, pairs in sorted(subsets.items(), key=lambda kv: (kv[0] == "all", kv[0])):
      names = sorted({k for _, m in pairs for k in m})
      choices = [len(it.choices) for it, _ in pairs if it.choices]
      targets = [it.answer.strip() for it, _ in pairs if not it.choices]
      result[task][subset] = {
          "n": len(pairs),
          "metrics": {k: metrics.summarize([m[k] for _, m in pairs if k in m],
                                           n_resamples=n_resamples) for k in names},
          "chance": {k: c for k in names
                     if (c := _chance(task, k, choices, targets)) is not None},
      }
      calibrated = [m for _, m in pairs if "answer_confidence" in m and "exact_match" in m]
      if calibrated and len(calibrated) == len(pairs):
        cal = metrics.calibration([m["answer_confidence"] for m in calibrated],
                                  [m["exact_match"] for m in calibrated],
                                  n_resamples=n_resamples)
        result[task][subset]["metrics"]["ece"] = {
            "mean": cal["ece"], "ci_low": cal["ci_low"], "ci_high": cal["ci_high"],
            "n": cal["n"]}
        result[task][subset]["calibration"] = {k: cal[k] for k in ("calibrated_high", "bins")}
  return result


def write(path: str, result: dict, meta: dict) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  files.write_json(path, {**meta, "tasks": result})


def _cell(v: dict | None) -> str:
  """A metric's mean and interval; a number measured once (a rate, a count) has none."""
  if not v:
    return ""
  if v["ci_low"] is None:
    return fmt(v["mean"], 3)
  return interval(v["mean"], v["ci_low"], v["ci_high"])


def table(result: dict, requested: int | None = None) -> str:
  """One line per task and subset: the items scored, exact match with its 95% interval
  and its chance level, then each other metric's mean and interval. With `requested` (the
  `-n` asked for), a last column says why a row holds other than that many items."""
  shown = [m for m in TABLE_METRICS
           if any(m in s["metrics"] for t in result.values() for s in t.values())]
  chance_of = next((m for m in ("exact_match", "mc_accuracy", "accuracy") if m in shown),
                   None)
  head = [f"{'task':<22}", f"{'subset':<24}", f"{'n':>5}"]
  for m in shown:
    head.append(f"{m:>23}")
    if m == chance_of:
      head.append(f"{'chance':>8}")
  notes = {(t, s): suites.why_not_n(t, s, v["n"], requested)
           for t, subsets in result.items() for s, v in subsets.items()} if requested else {}
  if any(notes.values()):
    head.append("note")
  lines = ["  ".join(head).rstrip()]
  lines.insert(1, "-" * len(lines[0]))
  for task, subsets in result.items():
    for subset, s in subsets.items():
      cells = [f"{task[:22]:<22}", f"{subset[:24]:<24}", f"{s['n']:>5}"]
      for m in shown:
        v = s["metrics"].get(m)
        cells.append(f"{_cell(v):>23}")
        if m == chance_of:
          c = s.get("chance", {}).get(m)
          cells.append(f"{fmt(c, 2) if c is not None else '-':>8}")
      if any(notes.values()):
        cells.append(notes[(task, subset)])
      lines.append("  ".join(cells).rstrip())
  if any(zero_width(v["ci_low"], v["ci_high"]) for t in result.values() for s in t.values()
         for m, v in s["metrics"].items() if m in shown):
    lines.append(ZERO_WIDTH)
  return "\n".join(lines)
