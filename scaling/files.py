"""File helpers every stage shares: atomic writes, JSON in and out, content digests.

A reader never sees half a file: writes go to a temporary file beside the target, which
then replaces it. Unreadable or corrupt JSON is the user's to fix (a file copied by
hand, a disk that filled up), so readers raise `UserError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any

import numpy as np

from scaling.errors import UserError


def write_atomic(path: str, data: str | bytes) -> None:
  """Writes `data` to `path` through a temporary file in the same directory."""
  tmp = f"{path}.tmp{os.getpid()}"
  try:
    with open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
      f.write(data)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def plain(node: Any) -> Any:
  """JSON has no NaN or infinity: such floats become strings ("nan", "inf")."""
  if isinstance(node, dict):
    return {k: plain(v) for k, v in node.items()}
  if isinstance(node, (list, tuple)):
    return [plain(v) for v in node]
  if isinstance(node, float) and not math.isfinite(node):
    return str(node)
  return node


def jsonable(obj: Any) -> Any:
  """Plain floats, ints, lists and dicts (from numpy types too); non-finite numbers become
  None (for analysis results, where a missing value is not a string)."""
  if isinstance(obj, dict):
    return {str(k): jsonable(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple, np.ndarray)):
    return [jsonable(v) for v in obj]
  if isinstance(obj, (bool, np.bool_)):
    return bool(obj)
  if isinstance(obj, (int, np.integer)):
    return int(obj)
  if isinstance(obj, (float, np.floating)):
    return float(obj) if math.isfinite(obj) else None
  return obj


def write_json(path: str, data: Any, *, sort_keys: bool = False) -> None:
  write_atomic(path, json.dumps(plain(data), indent=2, sort_keys=sort_keys) + "\n")


def read_json(path: str, default: Any = None) -> Any:
  """The JSON in `path`; `default` when the file does not exist (an error if None)."""
  if not os.path.exists(path):
    if default is not None:
      return default
    raise UserError(f"file not found: {path}")
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, UnicodeDecodeError, ValueError) as e:
    reason = e.strerror if isinstance(e, OSError) else str(e)
    raise UserError(f"cannot read {path}: {reason}") from None


def read_jsonl(path: str) -> list[dict]:
  """One JSON object per non-empty line; a missing file has none."""
  if not os.path.exists(path):
    return []
  out = []
  try:
    with open(path) as f:
      for number, line in enumerate(f, 1):
        if line.strip():
          out.append(json.loads(line))
  except (OSError, UnicodeDecodeError, ValueError) as e:
    where = f"line {number}" if "number" in locals() else "file"
    raise UserError(f"cannot read {path} ({where}): {e}") from None
  return out


def digest(obj: Any, length: int = 12) -> str:
  """A short content hash of a JSON-able object (key order does not matter)."""
  canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"))
  return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def check_writable(path: str, what: str = "output", *, create: bool = True) -> None:
  """Fails before any work when `path` could not be written: a parent is a regular file,
  the nearest existing folder is read-only, or (`create` False) its folder is missing."""
  folder = os.path.dirname(os.path.abspath(path))
  if not create and not os.path.isdir(folder):
    raise UserError(f"cannot write {what} {path}: folder {folder} does not exist")
  while not os.path.exists(folder):
    folder = os.path.dirname(folder)
  if not os.path.isdir(folder):
    raise UserError(f"cannot write {what} {path}: {folder} is a file, not a folder")
  if not os.access(folder, os.W_OK) or _read_only_mount(folder):
    raise UserError(f"cannot write {what} {path}: {folder} is not writable")


def _read_only_mount(folder: str) -> bool:
  """True on a read-only file system (where root's access() check still says yes)."""
  try:
    return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
  except OSError:
    return False
