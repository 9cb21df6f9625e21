"""A study's README as one self-contained HTML page (`report.html` beside it).

Studies run by a tool rather than a sweep (induction heads, tokenizer parity) are written up
in Markdown; this renders the subset those READMEs use (headings, paragraphs, nested lists,
tables, fenced code, images, links, bold and code spans) with the sweep report's stylesheet,
and embeds every local figure (PNG, GIF, SVG, JPEG) as a `data:` URI, so the page opens
offline with nothing beside it. Text is HTML-escaped; no scripts.
"""

from __future__ import annotations

import base64
import html
import os
import re

from scaling.analysis.html_report import MIME, STYLE

MIME = {**MIME, ".gif": "image/gif"}
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_EMPHASIS = re.compile(r"(?<![*\w])\*(?![*\s])(.+?)(?<![*\s])\*(?![*\w])")
_CODE = re.compile(r"`([^`]+)`")
_ITEM = re.compile(r"^( *)(?:[-*]|\d+\.) (.*)$")


def _image(directory: str, alt: str, src: str) -> str:
  path = os.path.join(directory, src)
  ext = os.path.splitext(src)[1].lower()
  if "://" in src or ext not in MIME or not os.path.isfile(path):
    return f'<a href="{html.escape(src)}">{html.escape(alt or src)}</a>'
  with open(path, "rb") as f:
    data = base64.b64encode(f.read()).decode("ascii")
  return f'<img src="data:{MIME[ext]};base64,{data}" alt="{html.escape(alt)}">'


def inline(text: str, directory: str) -> str:
  """Escapes `text` and renders its images, links, bold and code spans."""
  pieces, last = [], 0
  for m in _CODE.finditer(text):  # code spans first: nothing inside them is markup
    pieces.append(_spans(text[last:m.start()], directory))
    pieces.append(f"<code>{html.escape(m[1])}</code>")
    last = m.end()
  return "".join(pieces) + _spans(text[last:], directory)


def _emphasis(escaped: str) -> str:
  return _EMPHASIS.sub(r"<em>\1</em>", _BOLD.sub(r"<strong>\1</strong>", escaped))


def _spans(text: str, directory: str) -> str:
  out, last = [], 0
  for m in re.finditer(f"{_IMAGE.pattern}|{_LINK.pattern}", text):
    out.append(_emphasis(html.escape(text[last:m.start()])))
    if m[0].startswith("!"):
      out.append(_image(directory, m[1], m[2]))
    else:
      out.append(f'<a href="{html.escape(m[4])}">{html.escape(m[3])}</a>')
    last = m.end()
  return "".join(out) + _emphasis(html.escape(text[last:]))


def _table(rows: list[str], directory: str) -> str:
  cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
  head, body = cells[0], cells[2:]  # row 1 is the |---| rule
  th = "".join(f"<th>{inline(c, directory)}</th>" for c in head)
  trs = "".join("<tr>" + "".join(f"<td>{inline(c, directory)}</td>" for c in r) + "</tr>"
                for r in body)
  return f"<table><tr>{th}</tr>{trs}</table>"


def _list(lines: list[str], directory: str) -> str:
  """Nested lists by indentation; a line indented under an item continues it."""
  items = []  # [indent, ordered, text]
  for line in lines:
    m = _ITEM.match(line)
    if m:
      items.append([len(m[1]), line.strip()[0].isdigit(), m[2]])
    else:
      items[-1][2] += " " + line.strip()

  def build(i: int) -> tuple[str, int]:
    indent, tag, parts = items[i][0], "ol" if items[i][1] else "ul", []
    while i < len(items) and items[i][0] == indent:
      text, i, sub = inline(items[i][2], directory), i + 1, ""
      if i < len(items) and items[i][0] > indent:
        sub, i = build(i)
      parts.append(f"<li>{text}{sub}</li>")
    return f"<{tag}>{''.join(parts)}</{tag}>", i

  out, i = [], 0
  while i < len(items):
    block, i = build(i)
    out.append(block)
  return "".join(out)


def render(markdown: str, directory: str) -> str:
  """The HTML body of `markdown`, figures read from `directory`."""
  lines, out, i = markdown.splitlines(), [], 0
  while i < len(lines):
    line = lines[i]
    if not line.strip():
      i += 1
    elif line.startswith("```"):
      j = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("```")), len(lines))
      out.append(f"<pre>{html.escape(chr(10).join(lines[i + 1:j]))}</pre>")
      i = j + 1
    elif m := re.match(r"^(#{1,6}) (.*)$", line):
      level = len(m[1])
      out.append(f"<h{level}>{inline(m[2], directory)}</h{level}>")
      i += 1
    elif line.lstrip().startswith("|"):
      j = i
      while j < len(lines) and lines[j].lstrip().startswith("|"):
        j += 1
      out.append(_table(lines[i:j], directory))
      i = j
    elif _ITEM.match(line):
      j = i + 1
      while j < len(lines) and lines[j].strip() and (
          _ITEM.match(lines[j]) or lines[j].startswith(" ")):
        j += 1
      out.append(_list(lines[i:j], directory))
      i = j
    else:
      j = i + 1
      while j < len(lines) and lines[j].strip() and not (
          lines[j].startswith(("#", "```", "|")) or _ITEM.match(lines[j])):
        j += 1
      out.append(f"<p>{inline(' '.join(l.strip() for l in lines[i:j]), directory)}</p>")
      i = j
  return "\n".join(out)


def write(directory: str, readme: str = "README.md", out: str = "report.html") -> str:
  """Renders `directory/readme` to `directory/out`; returns the page's path."""
  with open(os.path.join(directory, readme), encoding="utf-8") as f:
    markdown = f.read()
  title = next((l[2:].strip() for l in markdown.splitlines() if l.startswith("# ")),
               os.path.basename(os.path.abspath(directory)))
  page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
          f"{render(markdown, directory)}\n</body></html>\n")
  path = os.path.join(directory, out)
  with open(path, "w", encoding="utf-8") as f:
    f.write(page)
  return path


def main(argv=None) -> int:
  """`python -m scaling.analysis.study_page DIR [DIR ...]`: each DIR's README as report.html."""
  import sys
  for directory in (sys.argv[1:] if argv is None else argv):
    if not os.path.isfile(os.path.join(directory, "README.md")):
      print(f"error: {directory} has no README.md to render", file=sys.stderr)
      return 2
    print(write(directory))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
