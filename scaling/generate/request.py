"""What `scaling sample` asks of a trained run."""

from __future__ import annotations

import dataclasses

from scaling.errors import RequestError, refuse_given


@dataclasses.dataclass(frozen=True)
class SampleRequest:
  """Prompts and sampler settings for text, classes and denoising settings for images.
  Fields a kind does not use must be left unset."""
  prompts: tuple[str, ...] = ()
  n: int | None = None
  temperature: float = 1.0
  top_k: int = 0
  top_p: float = 1.0
  min_p: float = 0.0
  max_new_tokens: int | None = None
  classes: tuple[int, ...] = ()
  steps: int | None = None
  sampler: str | None = None
  eta: float | None = None
  guidance: float | None = None
  continue_frames: int | None = None  # video: frames drawn after a held-out clip's first ones
  out: str | None = None
  seed: int = 0

  def count(self, default: int) -> int:
    """How many samples per prompt or class (`n`, else `default`), at least one."""
    n = default if self.n is None else self.n
    if n < 1:
      raise RequestError("n", f"{{field}} must be at least 1, got {n}")
    return n

  def unset(self, fields: tuple[str, ...], why: str) -> None:
    """Refuses the first of `fields` that was given: "<its name> <why>"."""
    refuse_given(self, fields, why)
