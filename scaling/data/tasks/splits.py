"""Held-out splits by construction, shared by every task generator.

An item belongs to the eval split when a hash of its prompt text falls below the eval
fraction. Membership is a pure function of the item, so a training sampler rejects eval
items without ever seeing the eval set, and no eval item can appear in training.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Hashable, Iterator, TypeVar

T = TypeVar("T")


def in_eval_split(prompt: str, eval_fraction: float) -> bool:
  digest = hashlib.blake2b(prompt.encode(), digest_size=8).digest()
  return int.from_bytes(digest, "little") / 2 ** 64 < eval_fraction


def draw(sample: Callable[[], T], *, split: str, n: int, eval_fraction: float,
         prompt: Callable[[T], str], what: str, max_tries: int | None = None,
         reject: Callable[[T], bool] = lambda item: False,
         key: Callable[[T], Hashable] = lambda item: item) -> Iterator[T]:
  """`n` items of `split` by rejection sampling. Eval items are distinct; train items may
  repeat. With `max_tries`, stop quietly after that many draws (fewer items than `n` when
  the split's space is small); without, a hopeless request is an error naming `what`."""
  if split not in ("train", "eval"):
    raise ValueError(f"unknown split {split!r}")
  want_eval = split == "eval"
  seen: set = set()
  produced, tries = 0, 0
  while produced < n:
    tries += 1
    if max_tries is not None and tries > max_tries:
      return
    if tries > 1000 * n + 10_000:
      raise ValueError(f"cannot draw {n} {split} items of {what} with "
                       f"eval_fraction={eval_fraction}")
    item = sample()
    if in_eval_split(prompt(item), eval_fraction) != want_eval or reject(item):
      continue
    if want_eval:
      if key(item) in seen:
        continue
      seen.add(key(item))
    produced += 1
    yield item
