"""A contrastive run draws nothing: `scaling sample` says so and points to `scaling eval`."""

from __future__ import annotations

from scaling.errors import UserError
from scaling.generate.image_sampling import inference_devices, load_artifacts
from scaling.generate.request import SampleRequest

__all__ = ["inference_devices", "load_artifacts", "sample"]


def sample(run, request: SampleRequest) -> list[str]:
  del request
  raise UserError(f"{run.workdir} is a contrastive image-text model: it embeds images and "
                  "captions and draws neither; score it with `scaling eval`")
