"""`scaling COMMAND --help` says everything the command takes: every flag with its help,
and where a command reads a config, the presets of the config files and how to override a
field, with an example."""

import argparse

import pytest

from scaling import cli

CONFIGURED = {"train", "launch", "bench", "sweep"}


def _commands():
  sub = next(a for a in cli.build_parser()._actions
             if isinstance(a, argparse._SubParsersAction))
  return sub.choices


@pytest.mark.parametrize("command", sorted(_commands()))
def test_help_lists_every_flag_and_how_to_configure(command, capsys):
  with pytest.raises(SystemExit) as exit_:
    cli.main([command, "--help"])
  assert exit_.value.code == 0
  text = capsys.readouterr().out
  for action in _commands()[command]._actions:
    assert action.help, f"{command}: {action.dest} has no help"
    shown = action.option_strings or [
        action.metavar or ("{" + ",".join(action.choices) + "}" if action.choices
                           else action.dest)]
    for flag in shown:
      assert flag in text, f"{command} --help lacks {flag}"
  if command in CONFIGURED:
    assert "--config.FIELD=VALUE" in text and "\nexample:\n  scaling " in text, text
  if command in CONFIGURED - {"sweep"}:
    assert "configs/lm/arithmetic.py: size=s0|s1|" in text and "(default s5)" in text, text
    assert "configs/diffusion/digits.py: size=d0|" in text, text
  if command == "sweep":
    assert "configs/sweeps/arithmetic_cpu.py" in text and "no presets" in text, text
