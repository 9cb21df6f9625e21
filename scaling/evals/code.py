"""The code suite: held-out programs from input/output examples, scored by running what the
model writes (`programs.score`, on our own interpreter), never by comparing its text with
the reference's.

Per problem there is one greedy program, the teacher-forced log-probabilities of the
reference program, and `samples` programs drawn at a temperature and top-p:

  exact_match           the greedy program passes every visible and hidden test (greedy
                        pass@1; named so that tables and capability plots read it as they
                        read every other suite's)
  hidden_pass_fraction  the fraction of the hidden tests the greedy program gets right
  reference_match       the greedy program is the reference text itself
  answer_logprob, mean_token_prob, predicted_exact_match   of the reference's tokens
  char_accuracy, edit_distance   the greedy text against the reference's, as elsewhere
  pass_at_1, pass_at_5, pass_at_10   the unbiased pass@k of the samples (k <= samples)
  filtered_pass_at_1    the first sample that passes the visible examples, run on the hidden
                        tests (0 when none does): what running the examples buys

Every metric gets its mean and a bootstrap interval over problems, per level and over `all`
(`aggregate.summarize`), under the task `program`. Each subset also counts how the greedy
programs and the samples end (`failures`, `sample_failures`; OUTCOMES).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from tqdm import tqdm

from scaling.data.tasks import mixture, programs
from scaling.evals import aggregate, metrics, scoring, suites
from scaling.evals.suites import EvalItem
from scaling.generate import sampling

TASK = "program"
PASS_AT = (1, 5, 10)
OUTCOMES = ("passed", "parse_error", "step_limit", "runtime_error", "wrong_output")
_LIMIT_REASONS = ("step_limit", "recursion_limit")


@dataclasses.dataclass(frozen=True)
class Settings:
  """How the samples are drawn; `samples` 0 scores the greedy program alone."""
  samples: int = 20
  temperature: float = 0.8
  top_p: float = 1.0
  seed: int = 0

  @property
  def sampling(self) -> sampling.SamplingConfig:
    return sampling.SamplingConfig(temperature=self.temperature, top_p=self.top_p).validate()

  def flags(self) -> dict:
    """The `scaling eval` flags that ask for these settings."""
    return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Scored:
  """One problem's greedy program, samples and their scores."""
  problem: programs.Problem
  greedy: str
  greedy_score: programs.Score
  reference_logprobs: np.ndarray
  samples: tuple[str, ...] = ()
  sample_scores: tuple[programs.Score, ...] = ()


def problems(data_cfg, n_per_level: int, seed: int = 0) -> list[programs.Problem]:
  """Up to `n_per_level` held-out problems of every trained level, with distinct functions;
  a level whose held-out space is small (depth1) gives fewer."""
  out = []
  for level in data_cfg.program_levels:
    out += mixture.program_problems(
        "eval", n_per_level, seed=seed, params=data_cfg, levels=(level,),
        max_tries=suites.max_draws(n_per_level, data_cfg.eval_fraction))
  return out


def outcome(score: programs.Score) -> str:
  """One of OUTCOMES: the interpreter's reasons, grouped."""
  if score.passed:
    return "passed"
  if not score.parses:
    return "parse_error"
  if score.reason in _LIMIT_REASONS:
    return "step_limit"
  if score.reason == "wrong_output":
    return "wrong_output"
  return "runtime_error"


def pass_at(scores, ks=PASS_AT) -> dict[str, float]:
  """The unbiased pass@k of one problem's samples, for every k up to their number."""
  n, c = len(scores), sum(s.passed for s in scores)
  return {f"pass_at_{k}": metrics.pass_at_k(n, c, k) for k in ks if k <= n}


def filtered_pass_at_1(scores) -> float:
  """1.0 when the first sample right on every visible example is right on the hidden tests."""
  chosen = next((s for s in scores if s.visible), None)
  return float(chosen is not None and chosen.hidden)


def item(problem: programs.Problem) -> EvalItem:
  return EvalItem(problem.prompt, problem.answer, TASK, problem.level)


def problem_metrics(scored: Scored) -> dict[str, float]:
  """Every metric of one problem (see the module docstring)."""
  row = aggregate.item_metrics(item(scored.problem),
                               scoring.Outputs(scored.greedy, scored.reference_logprobs))
  row["reference_match"] = row.pop("exact_match")
  row["exact_match"] = float(scored.greedy_score.passed)
  row["hidden_pass_fraction"] = scored.greedy_score.hidden_fraction
  if scored.sample_scores:
    row.update(pass_at(scored.sample_scores))
    row["filtered_pass_at_1"] = filtered_pass_at_1(scored.sample_scores)
  return row


def _counts(scores) -> dict[str, int]:
  ends = [outcome(s) for s in scores]
  return {name: ends.count(name) for name in OUTCOMES}


def summarize(scored: list[Scored], *, n_resamples: int = 1000) -> dict:
  """{"program": {subset: {"n", "metrics", "chance", "failures", "sample_failures"}}} in
  `aggregate`'s form; empty without problems."""
  result = aggregate.summarize([(item(s.problem), problem_metrics(s)) for s in scored],
                               n_resamples=n_resamples)
  for subset, entry in result.get(TASK, {}).items():
    members = [s for s in scored if subset in ("all", s.problem.level)]
    entry["failures"] = _counts([s.greedy_score for s in members])
    entry["sample_failures"] = _counts([x for s in members for x in s.sample_scores])
  return result


def budgets(run, prompts: list[str]) -> list[int]:
  """Each prompt's continuation budget, its answer and <eos>: what fits in the context the
  model was trained on."""
  return [max(1, run.context - len(ids)) for ids in run.tokenizer.encode_batch(prompts)]


def draw(run, problem_list: list[programs.Problem], settings: Settings, *,
         batch: int) -> list[list[str]]:
  """`settings.samples` sampled programs per problem, in batches of `batch` rows."""
  prompts = [p.prompt for p in problem_list]
  return scoring.sampled_answers(run.model, run.tokenizer, prompts, budgets(run, prompts),
                                 n=settings.samples, cfg=settings.sampling,
                                 seed=settings.seed, batch=batch)


def score_problems(run, problem_list: list[programs.Problem], settings: Settings, *,
                   batch: int = 128, progress: bool = True) -> list[Scored]:
  """Greedy programs, reference log-probs and samples of every problem, each run."""
  prompts = [p.prompt for p in problem_list]
  answers = [p.answer for p in problem_list]
  bar = tqdm(total=3, desc="code", disable=not progress, leave=False)
  greedy = scoring.greedy_answers(run.model, run.tokenizer, prompts, budgets(run, prompts),
                                  batch=batch)
  bar.update()
  logprobs = scoring.continuation_logprobs(run.model, run.tokenizer, prompts, answers,
                                           batch=batch)
  bar.update()
  samples = draw(run, problem_list, settings, batch=batch)
  bar.update()
  bar.close()
  return [Scored(p, g, programs.score(p, g), lp, tuple(s),
                 tuple(programs.score(p, x) for x in s))
          for p, g, lp, s in zip(problem_list, greedy, logprobs, samples)]


def evaluate(run, *, n_per_level: int, settings: Settings, batch: int = 128,
             progress: bool = True) -> dict:
  """The code suite's part of eval.json's `tasks` (see `summarize`)."""
  problem_list = problems(run.cfg.data, n_per_level)
  if not problem_list:
    return {}
  return summarize(score_problems(run, problem_list, settings, batch=batch,
                                  progress=progress))


def temperature_sweep(run, *, temperatures=(0.0, 0.2, 0.4, 0.8, 1.0), top_ps=(1.0, 0.95),
                      samples: int = 20, n_per_level: int = 100, batch: int = 128,
                      seed: int = 0, progress: bool = True) -> dict:
  """pass@1 and pass@10 (k <= samples) with intervals, per level and overall, at every
  (temperature, top_p), on the same held-out problems and from the same seed."""
  problem_list = problems(run.cfg.data, n_per_level)
  out = {"workdir": run.workdir, "step": run.step, "samples": samples,
         "n_per_level": n_per_level, "seed": seed, "settings": []}
  grid = [(t, p) for t in temperatures for p in top_ps]
  for temperature, top_p in tqdm(grid, desc="temperatures", disable=not progress):
    settings = Settings(samples, float(temperature), float(top_p), seed)
    drawn = draw(run, problem_list, settings, batch=batch)
    rows = [(item(p), pass_at([programs.score(p, x) for x in texts], ks=(1, 10)))
            for p, texts in zip(problem_list, drawn)]
    out["settings"].append({"temperature": settings.temperature, "top_p": settings.top_p,
                            "subsets": aggregate.summarize(rows).get(TASK, {})})
  return out
