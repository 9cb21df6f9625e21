"""The two kinds of error a user can cause; the CLI reports either as one `error:` line."""


class UserError(ValueError):
  """A mistake the user can fix (input, paths, flags); reported as one line, exit code 1."""


class ConfigError(UserError):
  """A mistake in a config."""


class RequestError(UserError):
  """A bad setting of an eval or sample request. `field` is the request's field name and
  `{field}` in the message marks where it is named: the command line names it by its flag
  (`scaling.cli`), a sweep by its `eval` key."""

  def __init__(self, field: str, message: str):
    super().__init__(message.replace("{field}", field))
    self.field, self.template = field, message

  def naming(self, name: str) -> str:
    """The message with the field called `name`."""
    return self.template.replace("{field}", name)
