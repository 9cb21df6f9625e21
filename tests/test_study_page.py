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
