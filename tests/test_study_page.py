"""A study's README as a self-contained report.html: figures embedded, markup rendered,
text escaped."""

import base64
import re

from scaling.analysis import study_page

README = """# A study <of> things

Some *emphasis*, **bold**, `code *not emphasis*` and a [link](https://example.org).
A second line of the same paragraph.

![curve](curve.png) ![missing](absent.png)

| size | score |
|---|---|
| s1 | 0.5 <b> |

- first
  continued
  - nested
- second

1. one
2. two

```bash
run <this> & that
```
"""


def test_a_readme_renders_with_its_figures_embedded(tmp_path):
  png = b"\x89PNG\r\n\x1a\n not really a png, but bytes to embed"
  (tmp_path / "curve.png").write_bytes(png)
  (tmp_path / "README.md").write_text(README)
  page = open(study_page.write(str(tmp_path))).read()
  assert "<title>A study &lt;of&gt; things</title>" in page
  assert "<h1>A study &lt;of&gt; things</h1>" in page
  assert ("<p>Some <em>emphasis</em>, <strong>bold</strong>, <code>code *not emphasis*</code>"
          ' and a <a href="https://example.org">link</a>. A second line of the same '
          "paragraph.</p>") in page
  embedded = re.search(r'<img src="data:image/png;base64,([^"]+)" alt="curve">', page)
  assert embedded and base64.b64decode(embedded[1]) == png
  assert '<a href="absent.png">missing</a>' in page  # a missing figure stays a link
  assert "<tr><th>size</th><th>score</th></tr><tr><td>s1</td><td>0.5 &lt;b&gt;</td></tr>" in page
  assert "<ul><li>first continued<ul><li>nested</li></ul></li><li>second</li></ul>" in page
  assert "<ol><li>one</li><li>two</li></ol>" in page
  assert "<pre>run &lt;this&gt; &amp; that</pre>" in page
  assert "<script" not in page and "<b>" not in page


EDGES = """- an item
  wrapped

  and its indented paragraph after a blank line
- [`dir`](../experiments/x/) with **`code` in bold**, globs runs/*/eval.json and sweeps/*/x
- a [bad link](javascript:alert(1))

- an outer item:
  - its sub-item

  a paragraph of the outer item,
  on two lines

A wrapped paragraph that mentions Olsson et al.
2022. found this, and goes on.
"""


def test_the_renderer_keeps_lists_links_and_globs_as_written(tmp_path):
  (tmp_path / "README.md").write_text(EDGES)
  body = study_page.render(EDGES, str(tmp_path))
  assert body.count("<ul>") == 2  # the indented paragraphs stay in their items
  assert ("<li>an outer item:<ul><li>its sub-item</li></ul><p>a paragraph of the outer item, "
          "on two lines</p></li></ul>") in body
  assert "<li>an item wrapped and its indented paragraph after a blank line</li>" in body
  assert '<a href="../experiments/x/"><code>dir</code></a>' in body
  assert "<strong><code>code</code> in bold</strong>" in body
  assert "runs/*/eval.json and sweeps/*/x" in body and "<em>" not in body
  assert "javascript:" not in body and '<a href="#">bad link</a>' in body
  assert "<p>A wrapped paragraph that mentions Olsson et al. 2022. found this" in body


def test_bad_input_is_one_error_line(tmp_path, capsys):
  assert study_page.main([str(tmp_path)]) == 2
  (tmp_path / "README.md").write_bytes(b"# caf\xe9\n")
  assert study_page.main([str(tmp_path)]) == 2
  assert study_page.main([]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert err[0] == f"error: {tmp_path} has no README.md to render"
  assert err[1].startswith(f"error: {tmp_path}/README.md is not UTF-8")
  assert err[2].startswith("usage: ")


def test_a_wav_becomes_an_audio_player(tmp_path):
  from scaling.data import speech
  wav = speech.wav_bytes([0.0, 0.5, -0.5])
  (tmp_path / "six.wav").write_bytes(wav)
  (tmp_path / "README.md").write_text("# Sounds\n\n![the model says six](six.wav)\n")
  page = open(study_page.write(str(tmp_path))).read()
  player = re.search(r'<audio controls src="data:audio/wav;base64,([^"]+)" '
                     r'title="the model says six"></audio> the model says six', page)
  assert player and base64.b64decode(player[1]) == wav
