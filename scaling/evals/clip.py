"""Evaluating a contrastive run on the held-out digit images and captions.

- `zero_shot/<template>`: each image is labelled by the class prompt of that template it
  scores highest with ("a handwritten seven", "7", "the number after six"); `all` pools them.
- `arithmetic/sum`, `difference`, `all`: each held-out arithmetic caption ("two plus
  five", "nine minus two", never trained on) finds the image it scores highest with among
  the held-out images: right when that image shows the result. One arithmetic step, and
  no memorised phrase.
- `retrieval/image_to_text`, `text_to_image`, `all` (both directions' queries): the
  held-out images against the captions of the zero-shot templates; a retrieved item is
  right when it shows (or names) the query's digit, since captions of one digit and
  template are the same text. recall@k: one of the top k is right.

`accuracy` and `recall_at_1` are the sharp metrics; `correct_prob` (the softmax over the
candidate classes' or items' scores, summed over the right ones) is the continuous one.
Chance is computed exactly from the candidates.
"""

from __future__ import annotations

from math import comb

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling import mesh as mesh_lib
from scaling.data import captions, image_sets
from scaling.errors import RequestError
from scaling.evals import aggregate, metrics
from scaling.evals.request import EvalRequest

SUITES = ("zero_shot",)
DEFAULT_N = 0  # 0: every held-out image
ZERO_SHOT = ("word", "digit", "successor")


def check(cfg, request: EvalRequest) -> None:
  del cfg
  request.check()
  request.unset(("samplers", "steps", "guidance"), "is for image generators, not a "
                "contrastive model")
  if request.task_files:
    raise RequestError("task_files", "{field} is for language models, not a contrastive "
                       "model")
  for name in request.suites or ():
    if name not in SUITES:
      raise RequestError("suites", f"unknown suite {name!r} for a contrastive model; known: "
                         f"{', '.join(SUITES)}")


def _embed(fn, params, graphdef, inputs: np.ndarray, mesh, batch: int) -> np.ndarray:
  """`fn(model, inputs)` over rows in batches split across the mesh's devices."""
  shards = mesh.devices.size
  batch = -(-min(batch, len(inputs)) // shards) * shards
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(mesh.axis_names))
  run = jax.jit(lambda p, x: fn(nnx.merge(graphdef, p), x))
  out = []
  for start in range(0, len(inputs), batch):
    index = np.minimum(np.arange(start, start + batch), len(inputs) - 1)
    out.append(np.asarray(run(params, jax.device_put(inputs[index], sharding)))
               [:min(batch, len(inputs) - start)])
  return np.concatenate(out)


def ranked_scores(scores_QC: np.ndarray, right_QC: np.ndarray, ks=(1, 5)) -> dict:
  """Per query: whether one of the top k candidates is right, for each k, and the softmax
  probability of the right ones."""
  order_QC = np.argsort(-scores_QC, axis=1, kind="stable")
  right_sorted_QC = np.take_along_axis(right_QC, order_QC, axis=1)
  probs_QC = np.exp(scores_QC - scores_QC.max(1, keepdims=True))
  probs_QC /= probs_QC.sum(1, keepdims=True)
  out = {f"recall_at_{k}": right_sorted_QC[:, :k].any(1).astype(float) for k in ks}
  out["correct_prob"] = (probs_QC * right_QC).sum(1)
  return out


def chance_at(right_QC: np.ndarray, k: int) -> float:
  """Chance that k candidates drawn at random hold a right one, averaged over queries."""
  n = right_QC.shape[1]
  return float(np.mean([1 - comb(n - int(r), k) / comb(n, k) for r in right_QC.sum(1)]))


def _row(per_item: dict, chance: dict) -> dict:
  n = len(next(iter(per_item.values())))
  return {"n": n, "metrics": {m: metrics.summarize(v) for m, v in per_item.items()},
          "chance": chance}


def evaluate(run, request: EvalRequest, *, progress: bool = True) -> dict:
  """Zero-shot accuracy, arithmetic captions and retrieval on the held-out split."""
  del progress  # a few batches: done in seconds
  check(run.cfg, request)
  test = image_sets.load(run.cfg.data, "test")
  n = min(request.n or len(test), len(test))
  rows = test.rows(np.arange(n))
  labels_N = rows["labels"]
  graphdef, params = nnx.split(run.model)
  length = captions.max_tokens(run.cfg.data.num_classes)
  table = captions.table("eval", run.cfg.data.num_classes, length)
  with mesh_lib.activate(run.mesh, run.rules):
    image_NE = _embed(lambda m, x: m.image(x), params, graphdef, rows["images"], run.mesh,
                      request.batch)
    text_CE = _embed(lambda m, x: m.text(x), params, graphdef, table.tokens_CT, run.mesh,
                     request.batch)
  logits = lambda a, b: np.asarray(run.model.logits(jnp.asarray(a), jnp.asarray(b)))
  classes = np.arange(run.cfg.data.num_classes)
  result = {"zero_shot": {}, "arithmetic": {}, "retrieval": {}}
  pooled: dict[str, list] = {}
  for k, template in enumerate(captions.TEMPLATES):
    if template not in ZERO_SHOT:
      continue
    prompts = [np.flatnonzero((table.labels_C == c) & (table.templates_C == k))[0]
               for c in classes]
    right_NK = labels_N[:, None] == table.labels_C[prompts][None, :]
    ranked = ranked_scores(logits(image_NE, text_CE[prompts]), right_NK)
    per_item = {"accuracy": ranked["recall_at_1"], "correct_prob": ranked["correct_prob"]}
    result["zero_shot"][template] = _row(per_item, {"accuracy": chance_at(right_NK, 1)})
    for m, v in per_item.items():
      pooled.setdefault(m, []).extend(v)
  result["zero_shot"]["all"] = _row({m: np.asarray(v) for m, v in pooled.items()},
                                    {"accuracy": 1 / len(classes)})

  for subset, kinds in (*((t, (t,)) for t in captions.ARITHMETIC), ("all", captions.ARITHMETIC)):
    rows_S = np.flatnonzero(np.isin(table.templates_C,
                                    [captions.TEMPLATES.index(t) for t in kinds]))
    right_SN = table.labels_C[rows_S][:, None] == labels_N[None, :]
    ranked = ranked_scores(logits(image_NE, text_CE[rows_S]).T, right_SN)
    result["arithmetic"][subset] = _row(
        {"accuracy": ranked["recall_at_1"], "correct_prob": ranked["correct_prob"]},
        {"accuracy": chance_at(right_SN, 1)})

  # Retrieval among the captions of the templates every size could learn (the held-out
  # arithmetic captions are their own task above).
  known = np.flatnonzero(np.isin(table.templates_C,
                                 [captions.TEMPLATES.index(t) for t in ZERO_SHOT]))
  scores_NC = logits(image_NE, text_CE[known])
  right_NC = labels_N[:, None] == table.labels_C[known][None, :]
  pooled, chances = {}, []
  for name, s, right in (("image_to_text", scores_NC, right_NC),
                         ("text_to_image", scores_NC.T, right_NC.T)):
    ranked = ranked_scores(s, right)
    chance = {f"recall_at_{k}": chance_at(right, k) for k in (1, 5)}
    result["retrieval"][name] = _row(ranked, chance)
    for m, v in ranked.items():
      pooled.setdefault(m, []).append(v)
    chances.append((len(right), chance))
  queries = sum(n for n, _ in chances)
  result["retrieval"]["all"] = _row(
      {m: np.concatenate(v) for m, v in pooled.items()},
      {m: sum(n * c[m] for n, c in chances) / queries for m in chances[0][1]})
  aggregate.write(run.eval_path, result, {
      "workdir": run.workdir, "step": run.step, "suites": list(SUITES), "n_images": n,
      "n_per_subset": n})
  return result
