"""Model families: what differs between an LM and a diffusion model.

The training loop, checkpoints, metrics and sweeps are shared; a family supplies the
model, the data, the objective, the held-out metrics and the cost per unit of data.
`family_for(cfg)` picks it from `cfg.model.kind`: `lm` (a decoder-only language model on
tokens, `scaling.families.lm`) or `dit` (a diffusion transformer on images,
`scaling.families.diffusion`).
"""

KINDS = ("lm", "dit")


def family_for(cfg):
  """The family `cfg.model.kind` names."""
  kind = cfg.model.kind
  if kind == "lm":
    from scaling.families.lm import LMFamily
    return LMFamily(cfg)
  if kind == "dit":
    from scaling.families.diffusion import DiffusionFamily
    return DiffusionFamily(cfg)
  raise ValueError(f"unknown model kind {kind!r}")
