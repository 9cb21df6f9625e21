"""One log for the toolkit and the libraries underneath, at the level --verbosity gives."""

import io
import logging
import sys
import threading

import pytest

from scaling import files, log


@pytest.fixture
def fresh_log(monkeypatch):
  """log.setup on a clean slate, its output in a buffer; everything restored after."""
  names = ("", log.LOGGER, *log.LIBRARIES)
  saved = {n: (logging.getLogger(n).level, list(logging.getLogger(n).handlers))
           for n in names}
  for n in names:  # without the handlers an earlier in-process `scaling` command added
    logger = logging.getLogger(n)
    for h in [h for h in logger.handlers if getattr(h, "_scaling", False)]:
      logger.removeHandler(h)
  # Python's own hooks (an earlier in-process `scaling` command installed the toolkit's)
  monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)
  monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
  monkeypatch.setattr(threading, "excepthook", threading.__excepthook__)
  monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
  out = io.StringIO()

  def setup(verbosity=log.DEFAULT):  # (pytest puts its own stderr back between phases)
    with monkeypatch.context() as m:
      m.setattr(sys, "stderr", out)
      log.setup(verbosity)

  yield setup, out
  for n, (level, handlers) in saved.items():
    logger = logging.getLogger(n)
    logger.setLevel(level)
    logger.handlers[:] = handlers


def test_default_shows_only_the_toolkits_warnings(fresh_log):
  setup, out = fresh_log
  setup()
  logging.getLogger("absl").warning("Type handler registry overriding jax.Array")
  logging.getLogger("asyncio").error("Task exception was never retrieved")
  logging.getLogger("scaling").info("a note")
  logging.getLogger("scaling").warning("checkpoint 30 is unreadable")
  assert out.getvalue() == "warning: checkpoint 30 is unreadable\n"


def test_info_adds_the_libraries_warnings_through_the_same_handler(fresh_log):
  setup, out = fresh_log
  setup("info")
  logging.getLogger("absl").warning("Type handler registry overriding jax.Array")
  logging.getLogger("absl").info("routine")
  logging.getLogger("scaling").info("a note")
  assert out.getvalue() == ("warning: [absl] Type handler registry overriding "
                                  "jax.Array\na note\n")


def test_exceptions_of_library_threads_go_to_the_debug_log(fresh_log, monkeypatch):
  setup, out = fresh_log
  printed = []
  monkeypatch.setattr(threading, "excepthook", lambda args: printed.append(args.exc_value))
  setup()

  def library_code():  # (this file is not the toolkit's code)
    raise OSError(28, "No space left on device")

  def run(target):
    thread = threading.Thread(target=target)
    thread.start()
    thread.join()

  run(library_code)
  assert printed == [] and out.getvalue() == ""
  run(lambda: files.read_json(None))  # a bug in the toolkit's code is printed as before
  assert len(printed) == 1 and isinstance(printed[0], TypeError)
  setup("debug")
  run(library_code)
  assert "No space left on device" in out.getvalue()
