"""A `jax.profiler` trace of chosen train steps, written into the run directory.

`--profile_steps=START:END` traces steps START to END - 1 (counting from 0). The trace
lands in `RUN/profile/plugins/profile/<time>/`: `*.xplane.pb` for TensorBoard's profile
plugin (`tensorboard --logdir RUN/profile`) and `perfetto_trace.json.gz` for
ui.perfetto.dev. Each step is annotated as `train` with its number, and the step's
program is `train_step`.
"""

from __future__ import annotations

import jax

from scaling.errors import UserError


def parse_steps(text: str | None) -> tuple[int, int] | None:
  """`START:END` -> (START, END); None stays None."""
  if text is None:
    return None
  start, sep, end = str(text).partition(":")
  if not (sep and start.isdigit() and end.isdigit() and int(start) < int(end)):
    raise UserError(f"--profile_steps: expected START:END with 0 <= START < END, got {text!r}")
  return int(start), int(end)


class StepProfiler:
  """Starts the trace before step `start` is dispatched and stops it once step `end - 1`
  has finished (or when the run stops earlier)."""

  def __init__(self, steps: tuple[int, int] | None, directory: str):
    self.steps, self.directory, self.active = steps, directory, False

  def __enter__(self) -> "StepProfiler":
    return self

  def __exit__(self, *exc) -> None:
    if self.active:
      jax.profiler.stop_trace()
      self.active = False

  def at(self, step: int, state) -> None:
    """Called with the number of steps done before each step and once after the last."""
    if self.steps is None:
      return
    start, end = self.steps
    if step == start and not self.active:
      jax.profiler.start_trace(self.directory, create_perfetto_trace=True)
      self.active = True
    elif step >= end and self.active:
      jax.block_until_ready(state)  # the traced steps run to their end inside the trace
      self.__exit__()
