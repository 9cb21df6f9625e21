"""The sweep's `status.json`: one record per trial (state, exit code, error, wall time)."""

from __future__ import annotations

import json
import os
import threading

from scaling import files

# Trials that run side by side update the table from several threads.
_LOCK = threading.Lock()


class Status:
  def __init__(self, path: str):
    self.path = path

  def read(self) -> dict:
    return files.read_json(self.path, default={})

  def get(self, name: str) -> str | None:
    return self.read().get(name, {}).get("state")

  def set(self, name: str, state: str, **fields) -> None:
    with _LOCK:
      table = self.read()
      table[name] = {"state": state, **{k: v for k, v in fields.items() if v is not None}}
      files.write_json(self.path, table, sort_keys=True)


def latest_step(metrics_path: str) -> int:
  """The last step a run logged (0 before its first log line)."""
  try:
    with open(metrics_path, "rb") as f:
      f.seek(0, os.SEEK_END)
      f.seek(max(0, f.tell() - 4096))
      lines = f.read().decode(errors="replace").strip().splitlines()
    return json.loads(lines[-1])["step"] if lines else 0
  except (OSError, ValueError, KeyError, IndexError):
    return 0
