"""What `scaling plot` reads from the results of each kind of model (`model.kind`, a
column of the results table)."""

from __future__ import annotations

import dataclasses

from scaling.errors import UserError


@dataclasses.dataclass(frozen=True)
class Reading:
  images: bool      # scored on generated images (`image_quality/...`), not exact match
  loss_label: str   # what the held-out loss measures, for axis labels


READINGS = {
    "lm": Reading(images=False, loss_label="held-out loss (nats/token)"),
    "dit": Reading(images=True, loss_label="held-out denoising error (MSE)"),
    "gan": Reading(images=True, loss_label="held-out discriminator loss (nats)"),
    "clip": Reading(images=False, loss_label="held-out sigmoid loss per pair (nats)"),
    "video": Reading(images=False, loss_label="held-out denoising error (MSE)"),
    "codec": Reading(images=False, loss_label="held-out spectral distance"),
    "audio": Reading(images=False, loss_label="held-out loss (nats/codec token)"),
}


def reading(rows: list[dict], where: str) -> Reading:
  """The reading of a table's one kind of model; one `error:` line when it has none or
  several."""
  kinds = {r.get("kind") for r in rows}
  if None in kinds:
    raise UserError(f"{where}: results.jsonl has no `kind` column (an older table): run "
                    "`scaling sweep collect` on the sweep directory to rewrite it")
  unknown = kinds - set(READINGS)
  if unknown or len(kinds) != 1:
    raise UserError(f"{where}: expected one known kind of model in the table, found "
                    f"{', '.join(sorted(map(str, kinds)))}")
  return READINGS[kinds.pop()]
