"""The family interface: what training needs from a kind of model, and nothing more."""

import pathlib
import re

from scaling.evals import kinds as eval_kinds
from scaling.families import FAMILIES, Family
from scaling.generate import kinds as sample_kinds

ROOT = pathlib.Path(__file__).resolve().parents[1]

MEMBERS = {
    # config
    "kind", "cfg", "base_config", "check",
    # model and cost
    "unit", "make_model", "params", "flops_per_unit", "units_per_step",
    # data
    "load_data", "save_artifacts", "train_dataset", "eval_batches", "synthetic_batch",
    # objective and update
    "ema_decay", "optimizer", "update",
    # held-out metrics
    "eval_sums", "eval_metrics", "activations",
}


def _protocol_members() -> set[str]:
  declared = set(Family.__annotations__) | {
      name for name in vars(Family) if not name.startswith("_")}
  return declared - {"mro"}


def test_the_protocol_lists_what_training_needs():
  assert _protocol_members() == MEMBERS


def test_every_family_implements_every_member():
  for kind, family_class in FAMILIES.items():
    family = family_class(family_class.base_config())
    missing = [m for m in MEMBERS if not hasattr(family, m)]
    assert not missing, f"{kind}: {missing}"
    assert family.kind == kind


def test_every_kind_is_evaluated_sampled_and_plotted():
  from scaling.analysis.kinds import READINGS
  assert set(eval_kinds.KINDS) == set(FAMILIES) == set(sample_kinds.KINDS) == set(READINGS)
  for module in eval_kinds.KINDS.values():
    assert all(hasattr(module, name) for name in ("SUITES", "DEFAULT_N", "check", "evaluate"))
  for module in sample_kinds.KINDS.values():
    assert all(hasattr(module, name)
               for name in ("load_artifacts", "inference_devices", "sample"))


def test_nothing_outside_families_uses_a_member_the_protocol_lacks():
  """`family.X` (or `run.family.X`) anywhere outside `scaling/families/` names a member."""
  used = {}
  for path in [*(ROOT / "scaling").rglob("*.py"), *(ROOT / "tools").rglob("*.py")]:
    if "families" in path.parts:
      continue
    for attribute in re.findall(r"\bfamily\.([A-Za-z_]\w*)", path.read_text()):
      used.setdefault(attribute, set()).add(str(path.relative_to(ROOT)))
  outside = {a: sorted(p) for a, p in used.items() if a not in MEMBERS}
  assert not outside, outside
  assert {"update", "make_model", "eval_sums"} <= set(used)  # the scan sees the loop
