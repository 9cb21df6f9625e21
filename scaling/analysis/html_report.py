"""A sweep's analysis as one self-contained HTML page. It opens with the answer: a one-paragraph
verdict and the headline figures, each captioned with what to look at. The method follows,
collapsed: the results table, the fits with their intervals, the emergence, threshold and
prediction reports in sentences, and the other figures. Nothing appears twice.

Figures are embedded as base64 `data:` URIs and the stylesheet is inline, so the file can be
mailed, archived or opened offline with nothing else beside it; the page has no scripts and
loads nothing from the network. All text from the analysis is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import os
from typing import Iterable, Sequence

from scaling.analysis import checkpoints, emergence, verdict
from scaling.numbers import ZERO_WIDTH, fmt, interval, zero_width

MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg", ".gif": "image/gif"}
CAPTIONS = {  # by file-name prefix; other figures are captioned with their name
    "loss_vs_params": "Final held-out loss against parameters, with the power-law fit and "
                      "its extrapolation.",
    "loss_vs_training_flops": "Final held-out loss against training compute.",
    "capability_vs_tokens": "Capability during training: one line per size, mean over seeds "
                            "at each checkpoint.",
    "capability_vs_loss": "Capability against held-out loss at every (size, checkpoint); "
                          "lower loss to the right. Sizes that line up emerge at one loss.",
    "prediction": "Two-step prediction from the small sizes (task loss from size, then the "
                  "metric from task loss) against the larger sizes' measurements.",
    "capability": "Capability against model size: each seed with its bootstrap 95% interval, "
                  "the mean over seeds as a line.",
}
STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f0f0f0; } td.l, th.l { text-align: left; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; }
.note { color: #666; font-size: 0.9em; }
.verdict { font-size: 1.05em; background: #f6f8fa; border-left: 4px solid #4a7; padding: 0.6em 1em; }
details > summary { cursor: pointer; font-size: 1.1em; margin: 1.5em 0 0.5em; }
"""


def _e(x) -> str:
  return html.escape(str(x), quote=True)


def _num(v, digits: int = 4) -> str:
  return fmt(v, digits)


def _ci(v) -> str:
  """'mean [lo, hi]' of a table metric, or '-'."""
  return interval(*v[:3]) if v else "-"


def _headline(rows, analysis: dict) -> tuple[str, str] | None:
  if analysis.get("headline"):
    return tuple(analysis["headline"])[:2]
  names = sorted(k for r in rows for k in r.get("metrics", {}) if k.endswith("/exact_match"))
  return tuple(names[0].split("/")[:2]) if names else None


def _table(rows: Sequence[dict], analysis: dict) -> str:
  final = [r for r in rows if checkpoints.is_final(r)]
  head = _headline(final, analysis)
  prefix = f"{head[0]}/{head[1]}/" if head else "-/-/"
  cols = ["size", "seed", "params", "tokens", "status", "held-out loss"]
  labels = {"exact_match": "exact match (95% CI)", "answer_logprob": "task loss"}
  extra = [(labels.get(m, m.replace("_", " ")), m)
           for m in ("exact_match", "char_accuracy", "digit_accuracy", "answer_logprob")
           if any(prefix + m in r.get("metrics", {}) for r in final)]
  out = ["<table><tr>" + "".join(f'<th class="l">{_e(c)}</th>' if i < 2 else f"<th>{_e(c)}</th>"
                                 for i, c in enumerate(cols + [c for c, _ in extra])) + "</tr>"]
  for r in sorted(final, key=lambda r: (r.get("params") or 0, r.get("seed") or 0)):
    m = r.get("metrics", {})
    cells = [f"{r['params']:,}" if isinstance(r.get("params"), int)
             else _num(r.get("params")), _num(r.get("tokens"), 3), r.get("status", "-"),
             _num(r.get("final_eval_loss"))]
    for _, k in extra:
      v = m.get(prefix + k)
      cells.append(_ci(v) if k == "exact_match" else "-" if not v
                   else _num(-v[0] if k == "answer_logprob" else v[0], 3))
    out.append(f'<tr><td class="l">{_e(r.get("size", "-"))}</td>'
               f'<td class="l">{_e(r.get("seed", "-"))}</td>'
               + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
  out.append("</table>")
  if any(zero_width(*r.get("metrics", {}).get(prefix + "exact_match", (0, None, None))[1:3])
         for r in final):
    out.append(f'<p class="note">{_e(ZERO_WIDTH.removeprefix("note: ").capitalize())}.</p>')
  if head:
    out.insert(0, f'<p class="note">Final checkpoint of every trial; metrics of '
                  f'{_e(head[0])} {_e(head[1])}.</p>')
  if len(final) < len(rows):
    out.append(f'<p class="note">{len(rows) - len(final)} intermediate-checkpoint rows are '
               "not shown; the figures use them.</p>")
  return "\n".join(out)


def _param(k: str, v, fit: dict) -> str:
  """`k = v [lo, hi]`, marked where it was held fixed or its interval has zero width."""
  ci = fit.get("ci", {}).get(k)
  if k in fit.get("fixed", ()):
    return f"{k} = {_num(v)} (fixed)"
  text = f"{k} = {_num(v)}" + (f" [{_num(ci[0])}, {_num(ci[1])}]" if ci else "")
  return text + (" (zero-width interval: at a bound, not a result)" if ci and ci[0] == ci[1]
                 else "")


def _fit_rows(name: str, fit: dict) -> str:
  params = ", ".join(_param(k, v, fit) for k, v in fit.get("params", {}).items())
  if fit.get("selection", {}).get("chosen") == "without_E":
    params += "; no asymptote: AICc prefers the law without E"
  return (f'<tr><td class="l">{_e(name)}</td><td class="l">{_e(fit.get("form", "-"))}</td>'
          f'<td class="l">{_e(params)}</td><td>{_e(fit.get("n_points", "-"))}</td></tr>')


def _fits(analysis: dict) -> str:
  found = dict(analysis.get("fits", {}))
  for key, rep in _reports(analysis.get("prediction")):
    for step in ("step1", "step2"):
      if rep.get(step):
        found[f"{key + ' ' if key else ''}prediction {step}"] = rep[step]
  if not found:
    return ""
  body = "".join(_fit_rows(n, f) for n, f in found.items() if f)
  return ('<h2>Fits</h2><table><tr><th class="l">fit</th><th class="l">form</th>'
          '<th class="l">parameters [95% interval]</th><th>points</th></tr>'
          + body + "</table>")


def _reports(value) -> list[tuple[str, dict]]:
  """A report, or a mapping of names to reports, as (name, report) pairs."""
  if not isinstance(value, dict) or not value:
    return []
  if "summary" in value:
    return [("", value)]
  return [(str(k), v) for k, v in value.items() if isinstance(v, dict) and "summary" in v]


def _sentences(lines: Iterable[str]) -> str:
  return "<ul>" + "".join(f"<li>{_e(s.strip())}</li>" for s in lines if s.strip()) + "</ul>"


def _analysis_text(analysis: dict) -> str:
  out = []
  emerg = [(k, v) for k, v in analysis.get("emergence", {}).items() if v]
  if emerg:
    out.append("<h2>Emergence with model size</h2>")
    for _, rep in emerg:
      if rep.get("same_as"):  # the same items and scores as a report shown already
        out.append(f'<p class="note">{_e(rep["task"])}: the same items and scores as '
                   f'{_e(rep["same_as"])}; not repeated.</p>')
      else:
        out.append(_sentences(emergence.format_report(rep).splitlines()))
  for key, title in (("loss_threshold", "Loss at which capabilities appear"),
                     ("emergence_order", "Order of emergence"),
                     ("prediction", "Prediction from small models")):
    reps = _reports(analysis.get(key))
    if reps:
      out.append(f"<h2>{_e(title)}</h2>")
      for name, rep in reps:
        if name:
          out.append(f"<h3>{_e(name)}</h3>")
        out.append(_sentences(rep["summary"]))
  return "\n".join(out)


def _figure_list(figures: Sequence[str | tuple[str, str]]) -> list[tuple[str, str]]:
  """(path, caption) pairs; of a PNG and an SVG of the same figure only the PNG is kept."""
  items = [(f, None) if isinstance(f, str) else (f[0], f[1]) for f in figures]
  paths = {p for p, _ in items}
  out = []
  for path, caption in items:
    stem, ext = os.path.splitext(path)
    if ext.lower() == ".svg" and stem + ".png" in paths:
      continue
    if caption is None:
      name = os.path.basename(stem)
      caption = next((c for k, c in CAPTIONS.items() if name.startswith(k)),
                     name.replace("_", " ") + ".")
    out.append((path, caption))
  return out


def _figure(path: str, caption: str, number: int) -> str:
  ext = os.path.splitext(path)[1].lower()
  if ext not in MIME:
    raise ValueError(f"cannot embed {path}: not one of {', '.join(MIME)}")
  with open(path, "rb") as f:
    data = base64.b64encode(f.read()).decode("ascii")
  label = f"Figure {number}. {caption}"
  return (f'<figure><img src="data:{MIME[ext]};base64,{data}" alt="{_e(caption)}">'
          f"<figcaption>{_e(label)} <span class=\"note\">({_e(os.path.basename(path))})"
          "</span></figcaption></figure>")


def write_report(directory: str, *, title: str, table_rows: Sequence[dict], analysis: dict,
                 lead: Sequence[tuple[str, str]] = (),
                 figures: Sequence[str | tuple[str, str]] = (),
                 texts: Sequence[str] = ()) -> str:
  """Write `<directory>/report.html` and return its path. `lead` are the headline figures
  as (path, caption) pairs, shown under the verdict; `figures` the others, as PNG/SVG paths
  or (path, caption) pairs; `texts` are paragraphs of method detail."""
  body = [f"<h1>{_e(title)}</h1>",
          f'<p class="verdict">{_e(verdict.paragraph(analysis))}</p>']
  firsts = {f if isinstance(f, str) else f[0] for f in lead}
  every = _figure_list([*lead, *figures])  # an SVG twin is dropped wherever its PNG is
  lead = [f for f in every if f[0] in firsts]
  rest = [f for f in every if f[0] not in firsts]
  body += [_figure(p, c, i + 1) for i, (p, c) in enumerate(lead)]
  details = [f"<p>{_e(t)}</p>" for t in texts]
  details += ["<h2>Results</h2>", _table(table_rows, analysis), _fits(analysis),
              _analysis_text(analysis)]
  if rest:
    details.append("<h2>Other figures</h2>")
    details += [_figure(p, c, len(lead) + i + 1) for i, (p, c) in enumerate(rest)]
  body.append("<details><summary>Method and details: the results table, fits, tests and "
              f"{len(rest)} more figures</summary>\n" + "\n".join(d for d in details if d)
              + "\n</details>")
  page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
          f"<title>{_e(title)}</title><style>{STYLE}</style></head>\n<body>\n"
          + "\n".join(b for b in body if b) + "\n</body></html>\n")
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, "report.html")
  with open(path, "w", encoding="utf-8") as f:
    f.write(page)
  return path
