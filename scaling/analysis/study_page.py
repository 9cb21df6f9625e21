"""A study's README as one self-contained HTML page (`report.html` beside it).

Studies run by a tool rather than a sweep (induction heads, tokenizer parity) are written up
in Markdown; this renders the subset those READMEs use (headings, paragraphs, nested lists,
tables, fenced code, images, links, bold, emphasis and code spans) with the sweep report's
stylesheet,
and embeds every local figure (PNG, GIF, SVG, JPEG) and sound (WAV, as an `<audio>`
player: `![label](clip.wav)`) as a `data:` URI, so the page opens
offline with nothing beside it. Text is HTML-escaped; no scripts.
"""

from __future__ import annotations

import base64
import html
import os
import re
import sys

from scaling.analysis.html_report import MIME, STYLE
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
# Emphasis opens only after a space, "(" or the start, so globs (runs/*/x) stay literal.
_EMPHASIS = re.compile(r"(?<![^\s(])\*(?![*\s])(.+?)(?<![*\s])\*(?![*\w])")
_CODE = re.compile(r"`([^`]+)`")
_ITEM = re.compile(r"^( *)(?:[-*]|\d+\.) (.*)$")
# What may interrupt a paragraph (CommonMark): a bullet or a list starting at 1, not a
# wrapped line that happens to begin "2022. ".
_INTERRUPT = re.compile(r"^ *(?:[-*]|1\.) ")
_SAFE_LINK = re.compile(r"^(?:https?:|mailto:|#|[^:]*$)")  # no javascript: and the like
_CODE_MARK = "\x00{}\x00"


SOUND = {".wav": "audio/wav"}


def _image(directory: str, alt: str, src: str) -> str:
  path = os.path.join(directory, src)
  ext = os.path.splitext(src)[1].lower()
  if "://" in src or ext not in {**MIME, **SOUND} or not os.path.isfile(path):
    return f'<a href="{html.escape(src)}">{html.escape(alt or src)}</a>'
  with open(path, "rb") as f:
    data = base64.b64encode(f.read()).decode("ascii")
  if ext in SOUND:  # `![what it says](clip.wav)`: a player, with its label
    return (f'<audio controls src="data:{SOUND[ext]};base64,{data}" '
            f'title="{html.escape(alt)}"></audio> {html.escape(alt)}')
  return f'<img src="data:{MIME[ext]};base64,{data}" alt="{html.escape(alt)}">'


def inline(text: str, directory: str) -> str:
  """Escapes `text` and renders its images, links, bold, emphasis and code spans."""
  codes = []

  def stash(m):  # code spans are set aside first: nothing inside them is markup
    codes.append(f"<code>{html.escape(m[1])}</code>")
    return _CODE_MARK.format(len(codes) - 1)

  out = _spans(_CODE.sub(stash, text), directory)
  return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m[1])], out)


def _emphasis(escaped: str) -> str:
  return _EMPHASIS.sub(r"<em>\1</em>", _BOLD.sub(r"<strong>\1</strong>", escaped))


def _spans(text: str, directory: str) -> str:
  out, last = [], 0
  for m in re.finditer(f"{_IMAGE.pattern}|{_LINK.pattern}", text):
    out.append(_emphasis(html.escape(text[last:m.start()])))
    if m[0].startswith("!"):
      out.append(_image(directory, m[1], m[2]))
    else:
      href = m[4] if _SAFE_LINK.match(m[4]) else "#"
      out.append(f'<a href="{html.escape(href)}">{_emphasis(html.escape(m[3]))}</a>')
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
  """Nested lists by indentation. A line indented under an item continues the nearest item
  whose marker sits left of it; after that item's sub-list, as a paragraph of its own."""
  items = []  # [indent, ordered, text, paragraphs after the sub-list]
  for line in lines:
    m = _ITEM.match(line)
    if m:
      items.append([len(m[1]), line.strip()[0].isdigit(), m[2], []])
      continue
    indent = len(line) - len(line.lstrip())
    k = next((k for k in range(len(items) - 1, -1, -1) if items[k][0] < indent), 0)
    if k == len(items) - 1:
      items[k][2] += " " + line.strip()
    elif items[k][3]:  # the paragraph after the sub-list goes on
      items[k][3][-1] += " " + line.strip()
    else:
      items[k][3].append(line.strip())

  def build(i: int) -> tuple[str, int]:
    indent, tag, parts = items[i][0], "ol" if items[i][1] else "ul", []
    while i < len(items) and items[i][0] == indent:
      item, i, sub = items[i], i + 1, ""
      if i < len(items) and items[i][0] > indent:
        sub, i = build(i)
      after = "".join(f"<p>{inline(t, directory)}</p>" for t in item[3])
      parts.append(f"<li>{inline(item[2], directory)}{sub}{after}</li>")
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
      while j < len(lines):
        if not lines[j].strip():  # a blank line ends the list unless an indented line
          following = lines[j + 1] if j + 1 < len(lines) else ""  # or a like item follows
          same_kind = (_ITEM.match(following) is not None
                       and following.strip()[0].isdigit() == line.strip()[0].isdigit())
          if following.strip() and (following.startswith(" ") or same_kind):
            j += 1
            continue
          break
        if not (_ITEM.match(lines[j]) or lines[j].startswith(" ")):
          break
        j += 1
      out.append(_list([l for l in lines[i:j] if l.strip()], directory))
      i = j
    else:
      j = i + 1
      while j < len(lines) and lines[j].strip() and not (
          lines[j].startswith(("#", "```", "|")) or _INTERRUPT.match(lines[j])):
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
  directories = sys.argv[1:] if argv is None else argv
  if not directories:
    print("usage: python -m scaling.analysis.study_page DIR [DIR ...]", file=sys.stderr)
    return 2
  for directory in directories:
    if not os.path.isfile(os.path.join(directory, "README.md")):
      print(f"error: {directory} has no README.md to render", file=sys.stderr)
      return 2
    try:
      print(write(directory))
    except UnicodeDecodeError as e:
      print(f"error: {directory}/README.md is not UTF-8 ({e.reason} at byte {e.start})",
            file=sys.stderr)
      return 2
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
