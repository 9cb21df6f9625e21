"""Config loading, overrides, hashing and saving."""

import json

import pytest

from scaling import config as config_lib
from scaling.errors import ConfigError
from tests.helpers import LM_CONFIG, add_default_field


def test_default_is_the_small_preset_and_args_select_sizes():
  default = config_lib.load(LM_CONFIG)
  assert default.name == "arithmetic-s5"
  big = config_lib.load(f"{LM_CONFIG}:size=s7")
  assert big.model.d_model > default.model.d_model
  with pytest.raises(ValueError, match="unknown size"):
    config_lib.load(f"{LM_CONFIG}:size=s99")


def test_overrides_parse_to_the_field_type():
  cfg = config_lib.load(LM_CONFIG)
  config_lib.apply_overrides(cfg, ["model.d_model=256", "train.learning_rate=1",
                                   "model.scan_layers=True", "model.mlp=swiglu",
                                   "data.ops=('+', '-')"])
  assert cfg.model.d_model == 256
  assert cfg.train.learning_rate == 1.0 and isinstance(cfg.train.learning_rate, float)
  assert cfg.model.scan_layers is True
  assert cfg.model.mlp == "swiglu"
  assert cfg.data.ops == ("+", "-")


@pytest.mark.parametrize("override, message", [
    ("model.width=3", "unknown config field: model.width"),
    ("modle.d_model=3", "unknown config field: modle"),
    ("model.d_model=3.5", "expected a int"),
    ("model.scan_layers=1", "expected True or False"),
    ("model=3", "is a section"),
    ("model.d_model", "needs a value"),
])
def test_bad_overrides_name_the_field(override, message):
  cfg = config_lib.load(LM_CONFIG)
  with pytest.raises(ConfigError, match=message):
    config_lib.apply_overrides(cfg, [override])


def test_hash_names_content_and_survives_saving(tmp_path):
  from scaling.families import lm
  defaults = lm.base_config()
  a, b = config_lib.load(LM_CONFIG), config_lib.load(LM_CONFIG)
  assert config_lib.config_hash(a, defaults) == config_lib.config_hash(b, defaults)
  config_lib.apply_overrides(b, ["seed=1"])
  assert config_lib.config_hash(a, defaults) != config_lib.config_hash(b, defaults)
  path = str(tmp_path / "config.json")
  config_lib.save(a, path)
  assert json.load(open(path))["model"]["d_model"] == a.model.d_model
  assert config_lib.config_hash(config_lib.from_json(path), defaults) == config_lib.config_hash(
      a, defaults)
  assert config_lib.run_name(a, defaults).startswith("arithmetic-s5-")


def test_a_new_field_at_its_default_keeps_the_hash(tmp_path, monkeypatch):
  """Run names cover the fields that differ from the family's defaults (and the hash
  schema's version), so a field added with a default leaves every run its name; setting it
  to another value, or a new schema version, renames the run."""
  from scaling.families import lm
  old = config_lib.load(LM_CONFIG)
  path = str(tmp_path / "config.json")
  config_lib.save(old, path)
  name = config_lib.run_name(old, lm.base_config())
  schema, with_new_field = add_default_field(monkeypatch, "train", "new_knob", 0.5)
  new = config_lib.load(LM_CONFIG)
  assert new.train.new_knob == 0.5
  assert config_lib.run_name(new, with_new_field()) == name
  assert config_lib.run_name(config_lib.from_json(path), with_new_field()) == name
  config_lib.apply_overrides(new, ["train.new_knob=0.25"])
  assert config_lib.run_name(new, with_new_field()) != name
  monkeypatch.setattr(config_lib, "HASH_SCHEMA", config_lib.HASH_SCHEMA + 1)
  assert config_lib.run_name(old, schema()) != name


@pytest.mark.parametrize("field", ["schedule", "optimizer"])
def test_optimizer_and_schedule_names_are_checked_in_one_place(field):
  """`optim.check` names the choices; the family check reports exactly its error."""
  from scaling import optim
  from scaling.families import base
  from tests.helpers import tiny_config
  cfg = tiny_config(f"train.{field}='nadamw'")
  choices = {"schedule": optim.SCHEDULES, "optimizer": optim.OPTIMIZERS}[field]
  with pytest.raises(ConfigError) as checked:
    optim.check(cfg.train)
  assert str(checked.value) == (f"config.train.{field}: unknown 'nadamw'; choose from "
                                f"{', '.join(choices)}")
  with pytest.raises(ConfigError) as in_family:
    base.check_training(cfg)
  assert str(in_family.value) == str(checked.value)


# Files another change is rewriting; each imports an error class from scaling.config still.
PENDING_ERROR_IMPORTS: set[str] = set()


def test_error_classes_are_imported_from_scaling_errors():
  """`ConfigError` and `UserError` have one home, `scaling.errors`; `scaling.config` uses
  them but is not a second place to import them from."""
  import ast
  import pathlib
  from tests.helpers import ROOT
  found = set()
  for folder in ("scaling", "tests", "tools"):
    for path in pathlib.Path(ROOT, folder).rglob("*.py"):
      for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.ImportFrom) and node.module == "scaling.config"
            and {"ConfigError", "UserError"} & {a.name for a in node.names}):
          found.add(str(path.relative_to(ROOT)))
  assert found <= PENDING_ERROR_IMPORTS, sorted(found - PENDING_ERROR_IMPORTS)
