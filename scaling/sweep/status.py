"""The sweep's `status.json`: one record per trial (state, exit code, error, wall time)."""

from __future__ import annotations

import json
import os


class Status:
  def __init__(self, directory: str):
    self.path = os.path.join(directory, "status.json")

  def read(self) -> dict:
    if not os.path.exists(self.path):
      return {}
    with open(self.path) as f:
      return json.load(f)

  def get(self, name: str) -> str | None:
    return self.read().get(name, {}).get("state")

  def set(self, name: str, state: str, **fields) -> None:
    table = self.read()
    table[name] = {"state": state, **{k: v for k, v in fields.items() if v is not None}}
    tmp = f"{self.path}.tmp"
    with open(tmp, "w") as f:
      json.dump(table, f, indent=2, sort_keys=True)
    os.replace(tmp, self.path)


def latest_step(run_dir: str) -> int:
  """The last step a run logged (0 before its first log line)."""
  path = os.path.join(run_dir, "metrics.jsonl")
  try:
    with open(path, "rb") as f:
      f.seek(0, os.SEEK_END)
      f.seek(max(0, f.tell() - 4096))
      lines = f.read().decode(errors="replace").strip().splitlines()
    return json.loads(lines[-1])["step"] if lines else 0
  except (OSError, ValueError, KeyError, IndexError):
    return 0
