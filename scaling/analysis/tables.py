"""The results table as text, for the terminal: one line per trial."""

from __future__ import annotations

CONTINUOUS = "char_accuracy"  # the smooth view set beside exact match


def capability_table(rows, task: str, subset: str) -> str:
  lines = [f"{'size':<6} {'seed':>4} {'params':>9} {'status':<10} {'eval loss':>9} "
           f"{'exact match (95% CI)':>24} {'char acc':>9} {'pred. EM':>9}"]
  for r in sorted(rows, key=lambda r: (r["params"], r["seed"])):
    m = r["metrics"]
    em = m.get(f"{task}/{subset}/exact_match")
    ca = m.get(f"{task}/{subset}/{CONTINUOUS}")
    pe = m.get(f"{task}/{subset}/predicted_exact_match")
    loss = r.get("final_eval_loss")
    lines.append(
        f"{r['size']:<6} {r['seed']:>4} {r['params']:>9,} {r['status']:<10} "
        f"{'-' if loss is None else f'{loss:.4f}':>9} "
        f"{f'{em[0]:.3f} [{em[1]:.3f}, {em[2]:.3f}]' if em else '-':>24} "
        f"{f'{ca[0]:.3f}' if ca else '-':>9} {f'{pe[0]:.3f}' if pe else '-':>9}")
  return "\n".join(lines)


def image_table(rows, subset: str) -> str:
  lines = [f"{'size':<6} {'seed':>4} {'params':>9} {'status':<10} {'eval mse':>9} "
           f"{'FD':>8} {'KID':>8} {'class acc (95% CI)':>22}   ({subset})"]
  for r in sorted(rows, key=lambda r: (r["params"], r["seed"])):
    m = r["metrics"]
    fd, kid, acc = (m.get(f"image_quality/{subset}/{k}") for k in ("fd", "kid", "class_accuracy"))
    loss = r.get("final_eval_loss")
    lines.append(
        f"{r['size']:<6} {r['seed']:>4} {r['params']:>9,} {r['status']:<10} "
        f"{'-' if loss is None else f'{loss:.4f}':>9} "
        f"{f'{fd[0]:.2f}' if fd else '-':>8} {f'{kid[0]:.2f}' if kid else '-':>8} "
        f"{f'{acc[0]:.3f} [{acc[1]:.3f}, {acc[2]:.3f}]' if acc else '-':>22}")
  return "\n".join(lines)
