"""A hash of the optimized program that `scaling bench train` would time for a config.

    python tools/hlo_fingerprint.py --config=configs/lm/text.py:size=3m [--config.x=y ...]
    PYTHONPATH=/tmp/base python tools/hlo_fingerprint.py ...   # another checkout's toolkit

Two checkouts that print the same hash compile the same train step, so they run at the same
speed with the same numbers. The step is the one `scaling.bench.bench_train` compiles
(`--steps 0`: compiled, not run), its text caught as it is compiled. The hashed text drops
what does not change the program: source locations (`metadata={...}` and the module's
tables of files and frames), and the numbering of instruction and computation names
(renamed in order of first appearance).
Compare on the same machine with the same jax and XLA flags.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from unittest import mock

import jax

import scaling
from scaling import bench, config as config_lib

_METADATA = re.compile(r",? metadata=\{[^{}]*\}")
_SOURCE_TABLES = ("FileNames", "FunctionNames", "FileLocations", "StackFrames")
_HEADER = re.compile(r"^(?:ENTRY )?%\S+ \(.*\) -> .* \{$", re.M)
_PARAM = re.compile(r"([(]|, )([A-Za-z_][\w.\-]*):")
_NAME = re.compile(r"%[A-Za-z_][\w.\-]*")


def compiled_text(cfg) -> str:
  """The optimized HLO text of `cfg`'s train step, compiled by `bench train` itself."""
  texts = []
  compile_ = jax.stages.Lowered.compile

  def compile_and_keep(lowered, *args, **kwargs):
    compiled = compile_(lowered, *args, **kwargs)
    texts.append(compiled.as_text())
    return compiled

  with mock.patch.object(jax.stages.Lowered, "compile", compile_and_keep):
    bench.bench_train(cfg, steps=0)
  if len(texts) != 1:
    sys.exit(f"expected bench train to compile one step, it compiled {len(texts)} programs")
  return texts[0]


def normalize(text: str) -> str:
  """Drops source locations and renumbers names in order of first appearance."""
  blocks = text.split("\n\n")  # the module's tables of source locations are blocks of their own
  text = "\n\n".join(b for b in blocks if b.split("\n", 1)[0] not in _SOURCE_TABLES)
  text = _METADATA.sub("", text)
  # A computation's header names its parameters without the `%` its body uses.
  text = _HEADER.sub(lambda m: _PARAM.sub(r"\1%\2:", m.group(0)), text)
  names: dict[str, str] = {}
  return _NAME.sub(lambda m: names.setdefault(m.group(0), f"%n{len(names)}"), text)


def main(argv=None):
  from scaling.cli import _split_overrides
  rest, overrides = _split_overrides(list(sys.argv[1:] if argv is None else argv))
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", required=True)
  parser.add_argument("--dump", help="also write the normalized text here (to diff two)")
  args = parser.parse_args(rest)
  cfg = config_lib.load(args.config)
  config_lib.apply_overrides(cfg, overrides)
  text = normalize(compiled_text(cfg))
  if args.dump:
    with open(args.dump, "w") as f:
      f.write(text)
  digest = hashlib.sha256(text.encode()).hexdigest()[:16]
  print(f"{digest}  {len(text.splitlines())} lines  {args.config} {' '.join(overrides)}"
        f"  (scaling from {scaling.__path__[0]})")


if __name__ == "__main__":
  main()
