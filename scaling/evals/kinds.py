"""How each kind of model is evaluated, by `model.kind` (as `scaling.families` registers
how each is trained). Each module gives:

  SUITES                               the suites `scaling eval` accepts; first: default
  DEFAULT_N                            items per subset (samples per class) without -n
  check(cfg, EvalRequest)              before any training or loading (sweeps call it)
  evaluate(run, EvalRequest, progress) scores a loaded run, writes eval.json, returns
                                       its `tasks` part
"""

from __future__ import annotations

from types import ModuleType

from scaling.errors import ConfigError
from scaling.evals import audio, clip, codec, dit, gan, lm, video

KINDS: dict[str, ModuleType] = {"lm": lm, "dit": dit, "gan": gan, "clip": clip,
                                 "video": video, "codec": codec, "audio": audio}


def for_kind(kind: str) -> ModuleType:
  if kind not in KINDS:
    raise ConfigError(f"config.model.kind: unknown {kind!r}; choose from {', '.join(KINDS)}")
  return KINDS[kind]
