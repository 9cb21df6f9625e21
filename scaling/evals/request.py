"""What `scaling eval` (or a sweep's `eval` section) asks of a trained run."""

from __future__ import annotations

import dataclasses

from scaling.errors import RequestError, refuse_given


@dataclasses.dataclass(frozen=True)
class EvalRequest:
  """Suites and settings to score a run with.

  `suites` None means the kind's default; image kinds read the sampler lists
  (comma-separated strings, None: the config's own setting). The code suite draws
  `samples` programs per problem at `temperature` and `top_p`, from `seed`.
  """
  suites: tuple[str, ...] | None = None
  task_files: tuple[str, ...] = ()
  n: int | None = None
  batch: int = 128
  samplers: str | None = None
  steps: str | None = None
  guidance: str | None = None
  samples: int = 20
  temperature: float = 0.8
  top_p: float = 1.0
  seed: int = 0

  @classmethod
  def build(cls, *, suites: str | None = None, task_files=(), n: int | None = None,
            batch: int = 128, samplers: str | None = None, steps=None, guidance=None,
            samples: int = 20, temperature: float = 0.8, top_p: float = 1.0,
            seed: int = 0) -> "EvalRequest":
    """From plain values (flags or a sweep's `eval` section), checked: `suites` is a
    comma-separated list (None: the kind's default)."""
    names = None
    if suites is not None:
      names = tuple(s for s in str(suites).split(",") if s)
      if not names and not task_files:
        raise RequestError("suites", "nothing to evaluate: give {field} and/or task files")
    request = cls(suites=names, task_files=tuple(task_files or ()), n=n, batch=batch,
                  samplers=samplers, steps=None if steps is None else str(steps),
                  guidance=None if guidance is None else str(guidance), samples=int(samples),
                  temperature=float(temperature), top_p=float(top_p), seed=int(seed))
    request.check()
    return request

  def check(self) -> None:
    """Checks that need no run: counts and sizes."""
    if self.n is not None and self.n < 1:
      raise RequestError("n", f"{{field}} must be at least 1, got {self.n}")
    if self.batch < 1:
      raise RequestError("batch", f"{{field}} must be at least 1, got {self.batch}")
    if self.samples < 0:
      raise RequestError("samples", f"{{field}} must be at least 0, got {self.samples}")
    # `not (a <= x)` rather than `x < a`, so that NaN is rejected too.
    if not self.temperature >= 0:
      raise RequestError("temperature",
                         f"{{field}} must be >= 0 (0 = greedy), got {self.temperature}")
    if not 0 < self.top_p <= 1:
      raise RequestError("top_p", f"{{field}} must be in (0, 1] (1 = off), got {self.top_p}")
    if self.seed < 0:
      raise RequestError("seed", f"{{field}} must be at least 0, got {self.seed}")

  def unset(self, fields: tuple[str, ...], why: str) -> None:
    """Refuses the first of `fields` that was given: "<its name> <why>"."""
    refuse_given(self, fields, why)
