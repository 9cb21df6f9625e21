"""The two kinds of error a user can cause; the CLI reports either as one `error:` line.
And `os_failure`: whether an error is the machine's (a full disk), however it arrived."""

import errno
import os
import re


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


def refuse_given(request, fields: tuple[str, ...], why: str) -> None:
  """Raises for the first of a request's `fields` that was given: "<its name> <why>"."""
  given = [f for f in fields if getattr(request, f) not in (None, ())]
  if given:
    raise RequestError(given[0], f"{{field}} {why}")


# What the storage layer (TensorStore, in C++) says when the OS refused a write.
_OS_ERROR_CODE = re.compile(r"os_error_code='?(\d+)")
_OS_ERROR_TEXTS = tuple(os.strerror(code) for code in (
    errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.ENOTDIR, errno.EIO))


def os_failure(e: BaseException, *, follow: bool = True) -> str | None:
  """The OS's reason (e.g. `No space left on device`) when `e` comes from a refused
  write or read, found through the chain of causes (with `follow`); None otherwise."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if isinstance(e, OSError) and e.strerror:
      return e.strerror
    text = str(e)
    if (code := _OS_ERROR_CODE.search(text)):
      return os.strerror(int(code.group(1)))
    if (found := next((t for t in _OS_ERROR_TEXTS if t in text), None)):
      return found
    if "RESOURCE_EXHAUSTED" in text:
      return "RESOURCE_EXHAUSTED (storage full or over quota)"
    e = (e.__cause__ or e.__context__) if follow else None
  return None
