"""Load, override, validate, hash and save experiment configs.

A config is a Python file with `get_config(arg: str | None) -> ConfigDict`, named on the
command line as `path/to/file.py` or `path/to/file.py:arg`. Overrides follow the
ml_collections convention `--config.section.key=value`; the value is parsed as a Python
literal and must have the type of the field it replaces.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
from typing import Any, Iterable

import ml_collections


class UserError(ValueError):
  """A mistake the user can fix (input, paths, flags); reported as one line, exit code 1."""


class ConfigError(UserError):
  """A mistake in a config."""


def load(spec: str) -> ml_collections.ConfigDict:
  """Loads `file.py[:arg]` by calling its `get_config(arg)`, or a saved `config.json`."""
  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    raise ConfigError(f"config file not found: {path}")
  if path.endswith(".json"):
    try:
      return from_json(path)
    except ValueError as e:
      raise ConfigError(f"could not read {path}: {e}") from None
  module_spec = importlib.util.spec_from_file_location("_scaling_config", path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except ConfigError:
    raise
  except Exception as e:  # A broken config file is the user's to fix.
    raise ConfigError(f"could not execute config file {path}: {type(e).__name__}: {e}") from e
  if not hasattr(module, "get_config"):
    raise ConfigError(f"config file {path} defines no get_config(arg)")
  cfg = module.get_config(arg or None)
  if not isinstance(cfg, ml_collections.ConfigDict):
    raise ConfigError(f"get_config in {path} must return an ml_collections.ConfigDict")
  return cfg


def _parse_value(field: str, text: str, current: Any) -> Any:
  """Parses `text` into the type of `current` (the field's existing value)."""
  if isinstance(current, str):
    try:  # Accept both `name` and a quoted `'name'`.
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      return text
    return value if isinstance(value, str) else text
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    if current is None:
      return text
    raise ConfigError(f"--config.{field}: cannot parse {text!r} as a {type(current).__name__}") from None
  if current is None:
    return value
  if isinstance(current, bool):
    if not isinstance(value, bool):
      raise ConfigError(f"--config.{field}: expected True or False, got {text!r}")
    return value
  if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
    return float(value)
  if isinstance(current, (tuple, list)) and isinstance(value, (tuple, list)):
    return type(current)(value)
  if type(value) is not type(current):
    raise ConfigError(
        f"--config.{field}: expected a {type(current).__name__}, got {text!r}")
  return value


def apply_overrides(cfg: ml_collections.ConfigDict, overrides: Iterable[str]) -> None:
  """Applies `section.key=value` overrides in place; unknown keys are errors."""
  for item in overrides:
    field, sep, text = item.partition("=")
    if not sep:
      raise ConfigError(f"override --config.{item} needs a value: --config.{field}=VALUE")
    node = cfg
    parts = field.split(".")
    for i, part in enumerate(parts):
      if not isinstance(node, ml_collections.ConfigDict) or part not in node:
        raise ConfigError(f"unknown config field: {'.'.join(parts[:i + 1])}")
      if i < len(parts) - 1:
        node = node[part]
    leaf = parts[-1]
    if isinstance(node[leaf], ml_collections.ConfigDict):
      raise ConfigError(f"--config.{field} is a section; override its fields one by one")
    with node.unlocked():
      node[leaf] = _parse_value(field, text, node[leaf])


def to_dict(cfg: ml_collections.ConfigDict) -> dict:
  """A JSON-compatible dict (tuples become lists)."""
  return json.loads(cfg.to_json())


def config_hash(cfg: ml_collections.ConfigDict) -> str:
  """Content hash of the resolved config: equal configs give equal run names."""
  canonical = json.dumps(to_dict(cfg), sort_keys=True, separators=(",", ":"))
  return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def run_name(cfg: ml_collections.ConfigDict) -> str:
  return f"{cfg.get('name', 'run')}-{config_hash(cfg)}"


def save(cfg: ml_collections.ConfigDict, path: str) -> None:
  with open(path, "w") as f:
    json.dump(to_dict(cfg), f, indent=2, sort_keys=True)
    f.write("\n")


def from_json(path: str) -> ml_collections.ConfigDict:
  """Reads a saved `config.json` back into a ConfigDict (lists become tuples)."""
  with open(path) as f:
    data = json.load(f)

  def tuplify(x):
    if isinstance(x, list):
      return tuple(tuplify(v) for v in x)
    if isinstance(x, dict):
      return {k: tuplify(v) for k, v in x.items()}
    return x

  return ml_collections.ConfigDict(tuplify(data))


def require(condition: bool, field: str, message: str) -> None:
  """Raises a ConfigError naming `field` unless `condition` holds."""
  if not condition:
    raise ConfigError(f"config.{field}: {message}")
