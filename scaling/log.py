"""The toolkit's log: warnings and progress notes on stderr, from process 0 only, so a
run on 32 hosts prints one copy. Results (tables, samples) go to stdout with `print`."""

from __future__ import annotations

import logging
import sys

LOGGER = "scaling"


class _LeadProcessOnly(logging.Filter):
  def filter(self, record: logging.LogRecord) -> bool:
    if "jax" not in sys.modules:  # JAX not started: there is one process
      return True
    import jax
    try:
      return jax.process_index() == 0
    except RuntimeError:  # backend not up yet
      return True


class _Format(logging.Formatter):
  def format(self, record: logging.LogRecord) -> str:
    text = super().format(record)
    return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"


def setup(level: int = logging.INFO) -> logging.Logger:
  """Sends the `scaling` logger to stderr as `warning: ...` / plain lines (idempotent)."""
  logger = logging.getLogger(LOGGER)
  if not any(getattr(h, "_scaling", False) for h in logger.handlers):
    handler = logging.StreamHandler(sys.stderr)
    handler._scaling = True
    handler.setFormatter(_Format("%(message)s"))
    handler.addFilter(_LeadProcessOnly())
    logger.addHandler(handler)
  logger.setLevel(level)
  # orbax and TFDS log routine notes (a read-only checkpoint folder) at WARNING.
  logging.getLogger("absl").setLevel(logging.ERROR)
  logger.propagate = False
  return logger


