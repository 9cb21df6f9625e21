"""Load, override, validate, hash and save experiment configs.

A config is a Python file with `get_config(arg: str | None) -> ConfigDict`, named on the
command line as `path/to/file.py` or `path/to/file.py:arg`. Overrides follow the
ml_collections convention `--config.section.key=value`; the value is parsed as a Python
literal and must have the type of the field it replaces.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import sys
from typing import Any, Iterable, Mapping, Sequence

import ml_collections

from scaling import files
from scaling.errors import ConfigError, UserError


def load(spec: str) -> ml_collections.ConfigDict:
  """Loads `file.py[:arg]` by calling its `get_config(arg)`, or a saved `config.json`.

  A config file is Python and runs with the user's rights, like any ml_collections
  config; a `config.json` is only read.
  """
  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    raise ConfigError(f"config file not found: {path}")
  if path.endswith(".json"):
    return from_json(path)
  module_spec = importlib.util.spec_from_file_location("_scaling_config", path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
      raise ConfigError(f"config file {path} defines no get_config(arg)")
    cfg = module.get_config(arg or None)
  except UserError as e:
    raise ConfigError(f"{path}: {e}") from None
  except Exception as e:  # A broken config file is the user's to fix.
    raise ConfigError(f"could not execute config file {path}: {type(e).__name__}: {e}") from None
  if not isinstance(cfg, ml_collections.ConfigDict):
    raise ConfigError(f"get_config in {path} must return an ml_collections.ConfigDict")
  return cfg


# While `presets_of` runs a config file: its path and the (choices, defaults) of the
# parse_presets calls it makes itself (not those of the files it loads in turn).
_recording: tuple[str, list] | None = None


def parse_presets(arg: str | None, choices: Mapping[str, Sequence[str] | None],
                  defaults: Mapping[str, str]) -> dict[str, str]:
  """Parses a config file's argument `key=value,key=value` against the allowed presets
  (choices None: any value, which the config file checks itself)."""
  if _recording is not None and os.path.abspath(
      sys._getframe(1).f_code.co_filename) == _recording[0]:
    _recording[1].append((dict(choices), dict(defaults)))
  presets = dict(defaults)
  expected = ",".join(f"{k}=<{'|'.join(v) if v else '...'}>" for k, v in choices.items())
  for item in filter(None, (arg or "").split(",")):
    key, sep, value = item.partition("=")
    if not sep or key not in choices:
      raise ConfigError(f"unknown preset {item!r}; expected {expected}")
    presets[key] = value
  for key, value in presets.items():
    if choices[key] is not None and value not in choices[key]:
      raise ConfigError(f"unknown {key} {value!r}; choose from {', '.join(choices[key])}")
  return presets


def presets_of(path: str) -> str:
  """The presets a config file accepts, as `key=a|b|c (default a)` items (`-` for none),
  from the parse_presets calls of its get_config with no argument."""
  global _recording
  _recording = (os.path.abspath(path), [])
  try:
    load(path)
  finally:
    (_, found), _recording = _recording, None
  items = [f"{key}={'|'.join(options) if options else '...'} (default {defaults.get(key)})"
           for choices, defaults in found for key, options in choices.items()]
  return ", ".join(items) or "-"


def check_fields(cfg: ml_collections.ConfigDict, base: ml_collections.ConfigDict,
                 prefix: str = "", what: str = "config") -> None:
  """Every field of `cfg` must exist in `base` (the full default config); fields `base` has
  and `cfg` lacks are filled in with their defaults (e.g. a field added after the run's
  config.json was written). An empty section in `base` is a free-form mapping."""
  for key in cfg.keys():
    if key not in base:
      raise ConfigError(f"unknown {what} field: {prefix}{key}")
    if isinstance(base[key], ml_collections.ConfigDict):
      if not isinstance(cfg[key], ml_collections.ConfigDict):
        raise ConfigError(f"{what}.{prefix}{key} must be a section, got {cfg[key]!r}")
      if base[key].keys():
        check_fields(cfg[key], base[key], f"{prefix}{key}.", what)
  with cfg.unlocked():
    for key in base.keys():
      if key not in cfg:
        cfg[key] = base[key].copy_and_resolve_references() if isinstance(
            base[key], ml_collections.ConfigDict) else base[key]


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


# The version of what a config hash means. Hashes cover only the fields that differ from
# their defaults, so a field added with a default that keeps the old behaviour renames no
# run; changing a default's value (or what a field means) changes the runs that rely on
# it without touching their fields: bump this then, and every run is renamed.
HASH_SCHEMA = 1
# How a run is laid out on devices, not what it computes: a run resumes on another mesh
# (fewer devices after a preemption) as the same run, so these are not in its hash.
LAYOUT_SECTIONS = ("mesh",)


def _changes(values: Mapping, defaults: Mapping) -> dict:
  """The entries of `values` that differ from `defaults` (a missing one is its default);
  sections recursively, except free-form ones (empty in `defaults`), compared whole."""
  out = {}
  for key, value in values.items():
    default = defaults.get(key)
    if isinstance(value, dict) and isinstance(default, dict) and default:
      value = _changes(value, default)
      if value:
        out[key] = value
    elif key not in defaults or value != default:
      out[key] = value
  return out


def config_hash(cfg: ml_collections.ConfigDict,
                defaults: ml_collections.ConfigDict | None = None) -> str:
  """Content hash of the config's fields that differ from `defaults` (its family's
  `base_config()`): equal configs give equal run names, and so do a config saved before a
  field was added and the same config with that field at its default. Without `defaults`
  every field counts (fine for comparing two configs of one version, not for naming runs).
  With `defaults`, the layout (`LAYOUT_SECTIONS`) is left out: it is not the run's identity."""
  values = to_dict(cfg)
  if defaults is not None:
    values = {k: v for k, v in values.items() if k not in LAYOUT_SECTIONS}
  changes = _changes(values, to_dict(defaults)) if defaults is not None else values
  return files.digest({"schema": HASH_SCHEMA, "config": changes})


def run_name(cfg: ml_collections.ConfigDict, defaults: ml_collections.ConfigDict) -> str:
  """`<name>-<config hash>`; `defaults` is the family's `base_config()`."""
  return f"{cfg.get('name', 'run')}-{config_hash(cfg, defaults)}"


def save(cfg: ml_collections.ConfigDict, path: str) -> None:
  files.write_json(path, to_dict(cfg), sort_keys=True)


def from_json(path: str) -> ml_collections.ConfigDict:
  """Reads a saved `config.json` back into a ConfigDict (lists become tuples)."""
  data = files.read_json(path)
  if not isinstance(data, dict):
    raise ConfigError(f"{path} does not hold a config (a JSON object)")

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
