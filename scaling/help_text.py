"""The end of a `scaling` command's --help: the presets of the config files beside the
toolkit, the `--config.FIELD=VALUE` override syntax and an example, made only when help is
asked for (listing a config file's presets runs it)."""

from __future__ import annotations

import argparse
import glob
import os
import textwrap

from scaling.errors import UserError

# The config files that come with the toolkit (a source checkout; absent from a wheel).
CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


class Parser(argparse.ArgumentParser):
  """A parser whose help ends with text made only when help is asked for (listing the
  presets of the config files runs them)."""

  def __init__(self, *args, epilog_fn=None, **kwargs):
    kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
    super().__init__(*args, **kwargs)
    self.epilog_fn = epilog_fn

  def format_help(self) -> str:
    if self.epilog_fn is not None:
      self.epilog = self.epilog_fn()
    return super().format_help()


def _shown(path: str) -> str:
  relative = os.path.relpath(path)
  return path if relative.startswith("..") else relative


def config_help(folders: tuple[str, ...], example: str, overrides_example: str) -> str:
  """The end of a command's help: the config files' presets, the override syntax, an
  example."""
  from scaling import config as config_lib
  paths = sorted(p for f in folders for p in glob.glob(os.path.join(CONFIGS, f, "*.py")))
  found = {}
  for path in paths:
    try:
      found[_shown(path)] = config_lib.presets_of(path)
    except UserError as e:
      found[_shown(path)] = f"(cannot be loaded here: {e})"
  if not found:
    lines = ["config presets: FILE.py:KEY=VALUE,KEY=VALUE (see the config file's docstring)"]
  elif all(presets == "-" for presets in found.values()):
    lines = textwrap.wrap("config files (they take no presets): " + ", ".join(found), 92,
                          subsequent_indent="  ")
  else:
    lines = ["config presets: --config=FILE.py:KEY=VALUE,KEY=VALUE picks them; the config "
             "files here take:"]
    for shown, presets in found.items():
      lines += textwrap.wrap(f"{shown}: {'(no presets)' if presets == '-' else presets}", 92,
                             initial_indent="  ", subsequent_indent="      ")
  lines += ["", "config overrides: any field of the config, after the flags, as "
            "--config.FIELD=VALUE (or", *textwrap.wrap(
                f"--config.FIELD VALUE), e.g. {overrides_example}", 92, initial_indent="  ",
                subsequent_indent="  "), "", "example:", f"  {example}"]
  return "\n".join(lines)
