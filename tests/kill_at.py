"""Trains a run and SIGKILLs itself in a chosen window (the kill-window tests' child).

    python -m tests.kill_at WINDOW CONFIG_JSON WORKDIR

WINDOW: `before_first_checkpoint` (steps logged, nothing saved yet), `between_checkpoints`
(one checkpoint committed, later steps logged), `before_summary` (every checkpoint
committed, summary.json not yet written). The kill is real: no cleanup code runs.
"""

import os
import signal
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()
os.environ["JAX_PLATFORMS"] = "cpu"

from scaling import compile_cache, config  # noqa: E402
from scaling.train import checkpoint, loop, summary  # noqa: E402


def _die():
  os.kill(os.getpid(), signal.SIGKILL)


def main(window: str, config_json: str, workdir: str) -> None:
  compile_cache.enable_from_env()
  saves = []
  save = checkpoint.Checkpointer.save

  def save_then_maybe_die(self, step, *args, **kwargs):
    saves.append(step)
    if window == "before_first_checkpoint" or (window == "between_checkpoints"
                                               and len(saves) == 2):
      self.wait()  # the earlier save is committed; this one never starts
      _die()
    return save(self, step, *args, **kwargs)

  checkpoint.Checkpointer.save = save_then_maybe_die
  if window == "before_summary":
    summary.Summary.write = lambda self, **kwargs: _die()
  loop.train(config.from_json(config_json), workdir)
  raise SystemExit("the run ended without being killed")


if __name__ == "__main__":
  main(*sys.argv[1:])
