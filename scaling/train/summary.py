"""`summary.json`: what a run was, how it ended, and what it cost."""

from __future__ import annotations

import logging
import os
import subprocess

import flax
import jax
import optax

from scaling import files, hardware
from scaling.errors import UserError
from scaling.models.counting import ParamCounts

log = logging.getLogger("scaling")


def git_revision() -> str | None:
  """The toolkit's git commit, when it is installed from a checkout."""
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                         text=True, timeout=5)
  except (OSError, subprocess.TimeoutExpired):
    return None
  return out.stdout.strip() or None if out.returncode == 0 else None


class Summary:
  """Accumulates across resumes: wall time adds up over the sessions of one run."""

  def __init__(self, path: str, cfg, params: ParamCounts, flops_per_unit: float,
               units_per_step: int, *, unit: str = "token", enabled: bool = True,
               mesh: jax.sharding.Mesh | None = None):
    """`unit` is what training costs are counted in: "token" (LMs) or "sample" (images);
    `mesh` is this session's layout, recorded per segment."""
    self.path, self.mesh = path, mesh
    self.cfg, self.params, self.enabled = cfg, params, enabled
    self.flops_per_unit, self.units_per_step, self.unit = flops_per_unit, units_per_step, unit

  def previous(self) -> dict:
    try:
      return files.read_json(self.path, default={})
    except UserError:  # a damaged summary is rewritten, not read
      return {}

  def _segment(self, start_step: int, step: int) -> dict:
    """The steps this session trained and the layout it trained them on."""
    devices = self.mesh.devices.size if self.mesh is not None else jax.device_count()
    return {"from_step": start_step, "to_step": step, "processes": jax.process_count(),
            "devices": int(devices), "device_kind": jax.devices()[0].device_kind,
            "mesh": dict(self.mesh.shape) if self.mesh is not None else None}

  def write(self, *, status: str, step: int, last: dict, wall_time_s: float,
            error: str | None = None, first_step_s: float | None = None,
            start_step: int | None = None) -> dict:
    """`start_step` is where this session began (a resume's checkpoint); the session is
    added to `segments`, one per session that ended with a record (a killed one has none,
    and its steps are trained again by the next)."""
    if not self.enabled:
      return {}
    before = self.previous()
    if status == "failed" and before.get("status") == "completed":
      # A later command that failed (a damaged checkpoint, a full disk) says nothing
      # about the finished run; its record stays.
      log.warning("%s stays completed; this attempt failed: %s", self.path, error)
      return before
    seen = step * self.units_per_step
    device_count = (int(self.mesh.devices.size) if self.mesh is not None
                    else jax.device_count())
    data = {
        "status": status,
        "step": step,
        "steps": self.cfg.train.steps,
        "params": self.params.as_dict(),
        f"flops_per_{self.unit}": self.flops_per_unit,
        f"{self.unit}s_seen": seen,
        "training_flops": self.flops_per_unit * seen,
        "final_train_loss": last.get("loss", before.get("final_train_loss")),
        "final_eval_loss": last.get("eval_loss", before.get("final_eval_loss")),
        "final_eval": {k: v for k, v in last.items() if k.startswith("eval_")}
                      or before.get("final_eval", {}),
        "wall_time_s": before.get("wall_time_s", 0.0) + wall_time_s,
        # data, model and compilation before the first step, in this session
        "first_step_s": first_step_s,
        "versions": {"jax": jax.__version__, "flax": flax.__version__,
                     "optax": optax.__version__},
        "device_kind": jax.devices()[0].device_kind,
        "device_count": device_count,
        "process_count": jax.process_count(),
        "segments": before.get("segments", []) + (
            [self._segment(start_step, step)] if start_step is not None else []),
        "fingerprint": hardware.fingerprint(device_count),
        "git_revision": git_revision(),
    }
    if error:
      data["error"] = error
    files.write_json(self.path, data)
    return files.plain(data)
