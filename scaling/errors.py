"""The two kinds of error a user can cause; the CLI reports either as one `error:` line."""


class UserError(ValueError):
  """A mistake the user can fix (input, paths, flags); reported as one line, exit code 1."""


class ConfigError(UserError):
  """A mistake in a config."""
