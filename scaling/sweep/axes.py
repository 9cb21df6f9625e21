"""Sweep axes beyond sizes and seeds, each a transformation of the list of trials.

- `learning_rates`: every (size, seed) at every learning rate, to pick the best per size
  by held-out loss (and to see whether muP's best learning rate stays put).
- `flop_budgets`: IsoFLOP profiles (Hoffmann et al. 2022): at each compute budget C every
  size trains on C / (FLOPs per token x N...) tokens, i.e. steps = C / (FLOPs per unit x
  units per step); sizes whose budget buys fewer than `isoflop_min_steps` steps drop out.
- `cooldowns`: several token budgets from one run (Hagele et al. 2024). With the `wsd`
  schedule, the run of fraction f of the longest trains f x steps with its own decay at
  the end; all share the warmup and the constant stable phase. A `trunk` trial trains that
  stable phase once, to the last branch point, keeping a checkpoint at every branch point;
  each branch copies the checkpoint where its decay starts and trains only its decay.
  Every branch has exactly the config (and so the name) of a run trained straight
  through with that budget, and gives the same numbers.
- `eval.checkpoints`: benchmark scores at intermediate checkpoints (as Pythia does); the
  trainer keeps those checkpoints and logs the held-out loss at them.
"""

from __future__ import annotations

import dataclasses

from scaling.errors import ConfigError
from scaling import families
from scaling.families import family_for


def _renamed(trial, cfg, **fields):
  name = families.run_name(cfg)
  return dataclasses.replace(trial, name=name, cfg=cfg, **fields)


def _with(cfg, **train):
  cfg = cfg.copy_and_resolve_references()
  with cfg.unlocked():
    cfg.train.update(train)
  return cfg


def learning_rates(trials, rates) -> list:
  if any(r <= 0 for r in rates):
    raise ConfigError(f"sweep.learning_rates: must be positive, got {tuple(rates)}")
  return [_renamed(t, _with(t.cfg, learning_rate=float(r)), learning_rate=float(r))
          for t in trials for r in rates]


def flop_budgets(trials, budgets, min_steps: int) -> list:
  if any(c <= 0 for c in budgets):
    raise ConfigError(f"sweep.flop_budgets: must be positive, got {tuple(budgets)}")
  floor = min_steps or max(10, 2 * trials[0].cfg.train.warmup_steps)
  out = []
  for budget in budgets:
    for t in trials:
      family = family_for(t.cfg)
      steps = round(budget / (family.flops_per_unit() * family.units_per_step()))
      if steps >= floor:
        out.append(_renamed(t, _with(t.cfg, steps=int(steps)), flop_budget=float(budget)))
  for budget in budgets:
    kept = {t.size for t in out if t.flop_budget == budget}
    if len(kept) < 3:
      raise ConfigError(
          f"sweep.flop_budgets: {budget:g} FLOPs trains only {len(kept)} size(s) for at "
          f"least {floor} steps (an IsoFLOP profile needs 3 or more); raise the budget or "
          "add smaller sizes")
  return out


def branch_step(train_cfg) -> int:
  """Where a `wsd` run's decay starts: the last step of its constant phase."""
  warmup = min(train_cfg.warmup_steps, train_cfg.steps)
  rest = max(train_cfg.steps - warmup, 1)
  return train_cfg.steps - max(int(rest * train_cfg.decay_fraction), 1)


def cooldowns(trials, fractions) -> list:
  """Each trial becomes a trunk (its stable phase) and one branch per fraction."""
  if not all(0 < f <= 1 for f in fractions):
    raise ConfigError(f"sweep.cooldowns: fractions of the run in (0, 1], got {tuple(fractions)}")
  out = []
  for t in trials:
    if t.cfg.train.schedule != "wsd":
      raise ConfigError("sweep.cooldowns: branch from a constant stable phase, so the "
                        "trials need train.schedule='wsd' (add it to sweep.overrides)")
    branches = []
    for f in sorted(fractions):
      cfg = _with(t.cfg, steps=max(1, round(f * t.cfg.train.steps)))
      step = branch_step(cfg.train)
      if step <= cfg.train.warmup_steps:
        raise ConfigError(f"sweep.cooldowns: the {f:g} run ({cfg.train.steps} steps) decays "
                          "from inside its warmup; use longer runs or larger fractions")
      branches.append((f, cfg, step))
    # The stable phase of every branch: warmup, then the peak learning rate throughout.
    trunk_cfg = _with(t.cfg, schedule="constant", steps=max(s for _, _, s in branches))
    with trunk_cfg.unlocked():
      trunk_cfg.checkpoint.keep_steps = tuple(sorted({s for _, _, s in branches}))
    trunk = _renamed(t, trunk_cfg, role="trunk")
    out.append(trunk)
    out += [_renamed(t, cfg, cooldown=f, trunk=trunk.name, branch_step=s)
            for f, cfg, s in branches]
  return out


def eval_checkpoints(trials, steps, every: int) -> list:
  """Keeps (and scores) the checkpoints at `steps`, and every `every` steps."""
  if any(s <= 0 for s in steps) or every < 0:
    raise ConfigError("sweep.eval.checkpoints: steps must be positive")
  out = []
  for t in trials:
    if t.role == "trunk":
      out.append(t)
      continue
    total = t.cfg.train.steps
    chosen = {s for s in steps if s < total}
    if every:
      chosen |= set(range(every, total, every))
    if t.branch_step is not None:  # earlier checkpoints are the trunk's
      chosen = {s for s in chosen if s > t.branch_step}
    cfg = t.cfg.copy_and_resolve_references()
    with cfg.unlocked():
      cfg.checkpoint.keep_steps = tuple(sorted(set(cfg.checkpoint.keep_steps) | chosen))
    out.append(_renamed(t, cfg, eval_steps=tuple(sorted(chosen))))
  return out


def trunk_steps_saved(trials) -> dict:
  """Steps trained with the trunk and its branches, against each budget from scratch."""
  branches = [t for t in trials if t.trunk]
  trunks = [t for t in trials if t.role == "trunk"]
  shared = sum(t.cfg.train.steps for t in trunks) + sum(
      t.cfg.train.steps - t.branch_step for t in branches)
  scratch = sum(t.cfg.train.steps for t in branches)
  return {"steps_trained": shared, "steps_from_scratch": scratch,
          "saved_fraction": 1 - shared / scratch if scratch else 0.0}

