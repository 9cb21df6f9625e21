"""Selecting and grouping rows of the results table (`scaling.sweep.results`) now that a
trial has one row per evaluated checkpoint: intermediate ones with `final: False`, the last
with `final: True`. Rows written before checkpoint rows existed have neither `final` nor
`step`; they are final.
"""

from __future__ import annotations


def completed(rows) -> list[dict]:
  return [r for r in rows if r.get("status") == "completed"]


def is_final(r) -> bool:
  return r.get("final") is not False


def training_order(r):
  """Sort key: by step, else tokens; a row without a step (a final one) comes last."""
  return (r.get("step") is None, r.get("step") or 0, r.get("tokens") or 0)


def chance(rows, name: str) -> float:
  """The chance level recorded for metric `name`, or 0 (exact match has none)."""
  return float(next((r["chance"][name] for r in rows if name in r.get("chance", {})), 0.0))


def group_by(rows, key: str) -> dict:
  """{value of key: its rows}, in first-seen order."""
  out: dict = {}
  for r in rows:
    out.setdefault(r[key], []).append(r)
  return out


def by_size(rows) -> list[tuple[str, list]]:
  """(size, its rows), smallest first."""
  return sorted(group_by(rows, "size").items(), key=lambda kv: kv[1][0]["params"])
