"""How each kind of model is opened and sampled, by `model.kind` (as `scaling.families`
registers how each is trained). Each module gives:

  load_artifacts(workdir) -> dict    what the run saved besides config and checkpoints
  inference_devices(devices) -> list the devices a loaded run samples on
  sample(run, SampleRequest) -> list[str]   `scaling sample`'s output lines
"""

from __future__ import annotations

from types import ModuleType

from scaling.errors import ConfigError
from scaling.generate import audio, clip, codec, dit, gan, lm, video

KINDS: dict[str, ModuleType] = {"lm": lm, "dit": dit, "gan": gan, "clip": clip,
                                 "video": video, "codec": codec, "audio": audio}


def sample(run, request) -> list[str]:
  """`scaling sample` on a loaded run, refusing what only another kind takes."""
  if run.cfg.model.kind != "video":
    request.unset(("continue_frames",), "is for video models: it continues a clip's frames")
  return for_kind(run.cfg.model.kind).sample(run, request)


def for_kind(kind: str) -> ModuleType:
  if kind not in KINDS:
    raise ConfigError(f"config.model.kind: unknown {kind!r}; choose from {', '.join(KINDS)}")
  return KINDS[kind]
