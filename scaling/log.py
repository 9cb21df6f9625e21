"""The toolkit's log: warnings and progress notes on stderr, from process 0 only, so a
run on 32 hosts prints one copy. Results (tables, samples) go to stdout with `print`.

The libraries underneath (orbax, TFDS, grain and JAX through absl; asyncio; XLA and
TensorStore in C++) log through the same handler, at the level `--verbosity` gives them:
by default only this toolkit's warnings are shown. A failure those libraries report in
their own words (an orbax traceback, an asyncio `Task exception was never retrieved`) is
reported by the toolkit once, as one `error:` line; `--verbosity=debug` shows theirs.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

LOGGER = "scaling"
# Loggers of the libraries underneath; the root logger covers any other.
LIBRARIES = ("absl", "asyncio", "jax", "orbax", "grain", "tensorflow_datasets", "tensorstore")
# --verbosity -> (level of this toolkit's log, level of the libraries' logs, the C++
# logs' minimum level (TF_CPP_MIN_LOG_LEVEL: 0 info, 1 warning, 2 error, 3 fatal)).
VERBOSITY = {
    "error": (logging.ERROR, logging.CRITICAL, "3"),
    "warning": (logging.WARNING, logging.CRITICAL, "2"),
    "info": (logging.INFO, logging.WARNING, "1"),
    "debug": (logging.DEBUG, logging.DEBUG, "0"),
}
DEFAULT = "warning"


class _LeadProcessOnly(logging.Filter):
  def filter(self, record: logging.LogRecord) -> bool:
    if "jax" not in sys.modules:  # JAX not started: there is one process
      return True
    try:
      # Set by jax.distributed.initialize; asking jax.process_index() here instead could
      # start the backends from inside a log call made while they start (a deadlock).
      from jax._src import distributed
      return distributed.global_state.process_id == 0
    except Exception:  # jax half imported, or its internals moved: print
      return True


class _Format(logging.Formatter):
  def format(self, record: logging.LogRecord) -> str:
    text = super().format(record)
    if not record.name.startswith(LOGGER):  # a library's: say whose
      text = f"[{record.name}] {text}"
    return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"


def _handler() -> logging.Handler:
  handler = logging.StreamHandler(sys.stderr)
  handler._scaling = True
  handler.setFormatter(_Format("%(message)s"))
  handler.addFilter(_LeadProcessOnly())
  return handler


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _through_ours(tb) -> bool:
  """Whether a traceback passes through this toolkit's code (else: only libraries')."""
  while tb is not None:
    if tb.tb_frame.f_code.co_filename.startswith(_PACKAGE):
      return True
    tb = tb.tb_next
  return False


def _library_tracebacks_to_debug() -> None:
  """Exceptions that the libraries' own threads and clean-ups print go to the debug log.

  TensorStore's C++ threads report an exception they cannot deliver (an asyncio callback
  into orbax's event loop, closed after a failed read or write) through `sys.excepthook`
  or as "unraisable"; TensorBoard's writer thread and its exit handler fail again on a
  disk that is full. The failure itself reaches the toolkit's main thread and is reported
  there, once. The main thread's exceptions and those of the toolkit's own threads keep
  the hooks they had.
  """
  if getattr(sys.unraisablehook, "_scaling", False):
    return
  previous_unraisable, previous_except = sys.unraisablehook, sys.excepthook
  previous_thread = threading.excepthook

  def to_debug(exc_type, exc, tb) -> None:
    logging.getLogger(LOGGER).debug("in a library", exc_info=(exc_type, exc, tb))

  def unraisable(u) -> None:
    if _through_ours(u.exc_traceback):
      previous_unraisable(u)
    else:
      to_debug(u.exc_type, u.exc_value, u.exc_traceback)

  def excepthook(exc_type, exc, tb) -> None:
    if threading.current_thread() is threading.main_thread() or _through_ours(tb):
      previous_except(exc_type, exc, tb)
    else:
      to_debug(exc_type, exc, tb)

  def thread_excepthook(args) -> None:
    if _through_ours(args.exc_traceback):
      previous_thread(args)
    else:
      to_debug(args.exc_type, args.exc_value, args.exc_traceback)

  for hook in (unraisable, excepthook, thread_excepthook):
    hook._scaling = True
  sys.unraisablehook, sys.excepthook = unraisable, excepthook
  threading.excepthook = thread_excepthook


def setup(verbosity: str = DEFAULT) -> logging.Logger:
  """Sends the toolkit's log and the libraries' to stderr as `warning: ...` / plain lines,
  each at its level for `verbosity` (one of VERBOSITY); idempotent."""
  own, libraries, native = VERBOSITY[verbosity]
  logger, root = logging.getLogger(LOGGER), logging.getLogger()
  for target in (logger, root):
    ours = [h for h in target.handlers if getattr(h, "_scaling", False)]
    for h in ours:  # set up before: to today's stderr (an earlier command's may be closed)
      if isinstance(h, logging.StreamHandler) and h.stream is not sys.stderr:
        h.stream = sys.stderr  # (not setStream, which flushes the old one first)
    if not ours:
      if target is root:
        for h in list(root.handlers):  # a basicConfig handler a library's first log added
          if type(h) is logging.StreamHandler:
            root.removeHandler(h)
      target.addHandler(_handler())
  logger.setLevel(own)
  logger.propagate = False
  root.setLevel(libraries)
  for name in LIBRARIES:
    logging.getLogger(name).setLevel(libraries)
  # Read by XLA and TensorStore when they start (this runs before JAX is imported); a
  # value the user set is kept.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", native)
  _library_tracebacks_to_debug()
  return logger
