"""The results table as text, for the terminal: one line per trial."""

from __future__ import annotations

from scaling.analysis import collapse
from scaling.numbers import ZERO_WIDTH, fmt, interval, zero_width

CONTINUOUS = "char_accuracy"  # the smooth view set beside exact match
# Each sharp metric (one item right or wrong) and the smooth view of the same outputs set
# beside it: language models' exact match, contrastive models' top-1 accuracy and recall.
SMOOTH_VIEW = {"exact_match": CONTINUOUS, "accuracy": "correct_prob",
               "recall_at_1": "correct_prob"}
HEADINGS = {"exact_match": ("exact match", "char acc"), "accuracy": ("accuracy", "p(right)"),
            "recall_at_1": ("recall@1", "p(right)")}


def sharp_metric(rows, task: str, subset: str) -> str:
  """The sharp metric a (task, subset) of the table is scored by (exact match if none)."""
  return next((m for m in SMOOTH_VIEW for r in rows if f"{task}/{subset}/{m}" in r["metrics"]),
              "exact_match")


def capability_table(rows, task: str, subset: str) -> str:
  sharp = sharp_metric(rows, task, subset)
  smooth = SMOOTH_VIEW[sharp]
  sharp_label, smooth_label = HEADINGS[sharp]
  # Predicted exact match is a language model's (the product of its answer's token probs).
  predicted = any(f"{task}/{subset}/predicted_exact_match" in r["metrics"] for r in rows)
  lines = [f"{'size':<6} {'seed':>4} {'params':>9} {'status':<10} {'eval loss':>9} "
           f"{sharp_label + ' (95% CI)':>24} {smooth_label:>9}"
           + (f" {'pred. EM':>9}" if predicted else "")]
  for r in sorted(rows, key=lambda r: (r["params"], r["seed"])):
    m = r["metrics"]
    em = m.get(f"{task}/{subset}/{sharp}")
    ca = m.get(f"{task}/{subset}/{smooth}")
    pe = m.get(f"{task}/{subset}/predicted_exact_match")
    loss = r.get("final_eval_loss")
    lines.append(
        f"{r['size']:<6} {r['seed']:>4} {r['params']:>9,} {r['status']:<10} "
        f"{fmt(loss):>9} {interval(*em[:3]) if em else '-':>24} "
        f"{fmt(ca[0], 3) if ca else '-':>9}"
        + (f" {fmt(pe[0], 3) if pe else '-':>9}" if predicted else ""))
  if any(zero_width(*r["metrics"].get(f"{task}/{subset}/{sharp}", (0, None, None))[1:3])
         for r in rows):
    lines.append(ZERO_WIDTH)
  return "\n".join(lines)


def image_table(rows, subset: str) -> str:
  """Quality (FD, KID, class accuracy), diversity (precision, recall, class coverage) and
  the collapse verdict (`scaling.analysis.collapse`) of each trial at one setting."""
  lines = [f"{'size':<6} {'seed':>4} {'params':>9} {'status':<10} {'eval loss':>9} "
           f"{'FD':>8} {'KID':>8} {'class acc (95% CI)':>22} {'prec':>6} {'recall':>6} "
           f"{'classes':>7} {'verdict':<9}   ({subset})"]
  value = lambda v, digits=3: fmt(v[0], digits) if v else "-"
  for r in sorted(rows, key=lambda r: (r["params"], r["seed"])):
    m = r["metrics"]
    fd, kid, acc, precision, recall, classes = (
        m.get(f"image_quality/{subset}/{k}") for k in
        ("fd", "kid", "class_accuracy", "precision", "recall", "class_coverage"))
    loss = r.get("final_eval_loss")
    lines.append(
        f"{r['size']:<6} {r['seed']:>4} {r['params']:>9,} {r['status']:<10} "
        f"{fmt(loss):>9} {value(fd):>8} {value(kid):>8} "
        f"{interval(*acc[:3]) if acc else '-':>22} "
        f"{value(precision):>6} {value(recall):>6} {value(classes):>7} "
        f"{collapse.verdict(r, subset):<9}")
  if any(zero_width(*r["metrics"].get(f"image_quality/{subset}/class_accuracy",
                                      (0, None, None))[1:3]) for r in rows):
    lines.append(ZERO_WIDTH)
  return "\n".join(lines)
