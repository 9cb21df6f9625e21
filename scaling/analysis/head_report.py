"""`scaling heads`: per-head induction scores, attention patterns, in-context loss and, for
arithmetic, exact match with each head mean-ablated, of one language-model checkpoint."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from scaling import files, runs
from scaling.analysis import head_plots, heads
from scaling.analysis.plots import save
from scaling.data.tokenizer import UNK_ID
from scaling.errors import UserError
from scaling.evals import suites
from scaling.numbers import fmt


def parse_heads(text: str | None, n_layers: int, n_heads: int) -> list[tuple[int, int]]:
  """`L.H,...` (0-based layer and head) into pairs; every head of the model when None."""
  if not text:
    return [(layer, head) for layer in range(n_layers) for head in range(n_heads)]
  pairs = []
  for part in text.split(","):
    try:
      layer, head = (int(v) for v in part.split("."))
    except ValueError:
      raise UserError(f"--heads: expected LAYER.HEAD pairs like 0.1,1.3, got {part!r}") from None
    if not (0 <= layer < n_layers and 0 <= head < n_heads):
      raise UserError(f"--heads: {part} is out of range: the model has layers 0-{n_layers - 1} "
                      f"and heads 0-{n_heads - 1}")
    pairs.append((layer, head))
  return pairs


FREQUENT = 512  # random sequences draw from this many of the commonest held-out tokens


def frequent_tokens(run, data: dict, k: int = FREQUENT, max_batches: int = 8) -> np.ndarray:
  """The `k` commonest ordinary tokens of the held-out data (`run.family.load_data()`):
  random sequences of these are made of tokens whose embeddings were trained (a large
  vocabulary has many that are not)."""
  counts = np.zeros(run.model.vocab_size, np.int64)
  for i, batch in enumerate(run.family.eval_batches(data, 0, 1)):
    if i == max_batches:
      break
    np.add.at(counts, np.asarray(batch["targets"])[np.asarray(batch["loss_mask"]) > 0], 1)
  counts[:UNK_ID + 1] = 0  # PAD, BOS, EOS, UNK
  return np.argsort(-counts, kind="stable")[:min(k, int((counts > 0).sum()))]


def whole_rows(positions_BL: np.ndarray) -> np.ndarray:
  """Rows that hold one piece of text from its position 0 to the row's end. Only these
  are compared across positions: in packed rows the late positions exist only in pieces
  that fill a row, so averaging every row would set early tokens of all pieces (short
  documents, other languages) against late tokens of long ones."""
  return (np.asarray(positions_BL) == np.arange(positions_BL.shape[1])).all(axis=1)


def loss_by_position(run, data: dict, max_batches: int = 8) -> tuple[np.ndarray, np.ndarray]:
  """Mean held-out loss at each position, over the rows that one piece of text fills
  (`whole_rows`), and the tokens it averages."""
  L = run.cfg.data.seq_len
  total, count = np.zeros(L), np.zeros(L)
  for i, batch in enumerate(run.family.eval_batches(data, 0, 1)):
    if i == max_batches:
      break
    logits = run.model(jnp.asarray(batch["inputs"]), batch.get("positions"),
                       batch.get("segment_ids"))
    logp = jax.nn.log_softmax(logits, axis=-1)
    nll = -np.asarray(jnp.take_along_axis(logp, jnp.asarray(batch["targets"])[..., None],
                                          -1))[..., 0]
    positions = batch.get("positions", np.broadcast_to(np.arange(L), nll.shape))
    mask = (np.asarray(batch["loss_mask"]) > 0) & whole_rows(positions)[:, None]
    np.add.at(total, positions[mask], nll[mask])
    np.add.at(count, positions[mask], 1)
  with np.errstate(invalid="ignore"):
    return total / count, count


def run(*, workdir: str, step: int | None, out: str, shown: str | None, length: int | None,
        n: int) -> int:
  files.check_writable(os.path.join(out, "heads.json"), "--out")
  loaded = runs.load(workdir, devices=jax.devices()[:1], step=step)
  if loaded.cfg.model.kind != "lm":
    raise UserError(f"{workdir} is a {loaded.cfg.model.kind} run: `scaling heads` reads "
                    "language models")
  model, cfg = loaded.model, loaded.cfg
  attn = model.blocks.attn
  pairs = parse_heads(shown, model.n_layers, attn.n_heads)
  T = length or max(2, min(64, (cfg.data.seq_len - 1) // 2))
  data = loaded.family.load_data()
  tokens = heads.repeated_random_tokens(n, T, model.vocab_size,
                                        pool=frequent_tokens(loaded, data))
  logits, probs, _ = heads.probe(model, tokens)
  induction = heads.induction_scores(probs, T)
  result = {"workdir": os.path.abspath(workdir), "step": loaded.step,
            "layers": model.n_layers, "heads": attn.n_heads, "repeat_length": T,
            "sequences": n, "induction_score": induction.tolist(),
            "repeat_loss_drop": heads.repeat_loss_drop(logits, tokens, T)}
  by_position, counts = loss_by_position(loaded, data)
  result["in_context"] = {**heads.in_context_improvement(by_position, counts),
                          "loss_by_position": [None if c == 0 else float(v)
                                               for v, c in zip(by_position, counts)]}
  if "arithmetic" in dict(cfg.data.mixture):
    items = [it for it in suites.arithmetic_items(cfg.data, n_per_subset=n)
             if it.task == "arithmetic"]
    rows, mask = heads.answer_rows(loaded.tokenizer, items, cfg.data.seq_len + 1)
    result["arithmetic_ablation"] = heads.ablation(model, rows, mask)
    targets = [heads.operand_digit_positions(loaded.tokenizer, it, cfg.data.reverse_answer)
               for it in items]
    attention, uniform = heads.operand_attention(heads.probe(model, rows)[1], targets)
    if attention is not None:
      result["arithmetic_ablation"].update(operand_attention=attention.tolist(),
                                           operand_attention_uniform=uniform)

  os.makedirs(out, exist_ok=True)
  files.write_json(os.path.join(out, "heads.json"), result)
  figures = save(head_plots.patterns(probs[:, 0], pairs, T), out, "attention_patterns")
  figures += save(head_plots.scores(result), out, "head_scores")
  print(table(result))
  print(f"\nwrote {os.path.join(out, 'heads.json')}, {', '.join(figures)}")
  return 0


def table(result: dict) -> str:
  ablation = result.get("arithmetic_ablation")
  operands = (ablation or {}).get("operand_attention")
  lines = [f"{result['workdir']} at step {result['step']}: {result['layers']} layers x "
           f"{result['heads']} heads; repeated random sequences of {result['repeat_length']} "
           f"tokens (x{result['sequences']})",
           f"{'layer':>5} {'head':>4} {'induction':>9}"
           + (f" {'EM drop if ablated':>18}" if ablation else "")
           + (f" {'to operand digits':>17}" if operands else "")]
  for layer, row in enumerate(result["induction_score"]):
    for head, score in enumerate(row):
      drop = f" {fmt(ablation['drop'][layer][head], 3):>18}" if ablation else ""
      operand = f" {fmt(operands[layer][head], 3):>17}" if operands else ""
      lines.append(f"{layer:>5} {head:>4} {fmt(score, 3):>9}{drop}{operand}")
  ic = result["in_context"]
  improvement = (f"{fmt(ic['improvement'], 3)} nats" if ic["improvement"] is not None
                 else f"none ({ic['why']})")
  lines.append(f"loss drop on the repeat: {fmt(result['repeat_loss_drop'], 3)} nats; "
               f"in-context improvement (held-out loss at position {ic['early_position']} "
               f"minus {ic['late_position']}): {improvement}")
  if ablation:
    lines.append(f"arithmetic exact match {fmt(ablation['exact_match'], 3)} on "
                 f"{ablation['n']} held-out problems (teacher-forced argmax, which greedy "
                 "decoding equals); a head's drop is the loss when its output is its mean")
  if operands:
    lines.append("to operand digits: attention from the position that predicts each answer "
                 "digit to the operand digits of its place (uniform attention: "
                 f"{fmt(ablation['operand_attention_uniform'], 3)})")
  return "\n".join(lines)
