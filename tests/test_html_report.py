"""The HTML report is one self-contained page, and headless Chromium renders it with every
image loaded and no console errors. The Chromium checks skip where it is not installed
(tools/install_chromium.sh installs Debian's package)."""

import base64
import html
import json
import os
import re
import shutil
import signal
import subprocess

import numpy as np
import pytest
from PIL import Image

from scaling.analysis import emergence, fits, html_report, plots, prediction, prediction_plots
from tests import synthetic_sweep as ss

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Without the background-networking flags Chromium keeps trying to reach Google's services,
# which on a closed network stalls or floods the log.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WINDOW = (1280, 2400)
# Injected at the top of <head>: records script errors, failed loads (error events do not
# bubble, hence capture) and console.error calls, then writes the verdict into the DOM once
# the page has loaded, for --dump-dom to return.
PROBE = """<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var t = e.target;
    errors.push(t && t.tagName ? "failed to load " + t.tagName + " "
                + String(t.currentSrc || t.src || "").slice(0, 60) : String(e.message));
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    errors.push("unhandled rejection: " + e.reason);
  });
  var original = console.error;
  console.error = function () {
    errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
  window.addEventListener("load", function () {
    var images = Array.prototype.slice.call(document.images);
    var bad = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                    .map(function (i) { return i.alt || String(i.src).slice(0, 60); });
    var figure = document.querySelector("figure");
    document.documentElement.setAttribute("data-probe", JSON.stringify(
        {images: images.length, bad: bad, errors: errors,
         first_figure_top: figure ? figure.getBoundingClientRect().top + window.scrollY
                                  : null}));
  });
})();
</script>"""

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (tools/install_chromium.sh installs "
                             "Debian's chromium; needs root and apt-get)")


def _chromium(tmp_path, *args: str, timeout: float = 120) -> tuple[str, str]:
  """Run headless Chromium with a fresh profile; returns (stdout, stderr)."""
  profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
  proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True)
  try:
    out, err = proc.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    out, err = "", "timed out"
  finally:
    try:  # its own session: this ends the browser's helper processes and nothing else
      os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
      pass
    proc.communicate()
  assert err != "timed out", f"Chromium did not finish in {timeout} s"
  return out, err


def check_page(path: str, tmp_path) -> dict:
  """Render a copy of the page with the probe; images, failed images, script errors and
  every console message Chromium logged (the report itself has no scripts, so any is one
  too many)."""
  with open(path, encoding="utf-8") as f:
    page = f.read()
  probe = tmp_path / "probed.html"
  probe.write_text(page.replace("<head>", "<head>" + PROBE, 1) if "<head>" in page
                   else PROBE + page, encoding="utf-8")
  out, err = _chromium(tmp_path, "--enable-logging=stderr", "--v=0",
                       f"--window-size={WINDOW[0]},{WINDOW[1]}",
                       "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
  found = re.search(r'data-probe="([^"]*)"', out)
  assert found, f"the page never finished loading:\n{out[:500]}\n{err[-2000:]}"
  verdict = json.loads(html.unescape(found[1]))
  verdict["console"] = [line for line in err.splitlines() if ":CONSOLE" in line]
  return verdict


def _clean(v: dict) -> bool:
  return not v["bad"] and not v["errors"] and not v["console"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
  """A report of a small synthetic sweep, with every kind of figure and analysis."""
  d = tmp_path_factory.mktemp("sweep")
  accuracy = lambda tl, h, n: ss.sigmoid_of(1.6, -3.0)(tl)  # noqa: E731
  rows = ss.sweep({"arithmetic/+3d": (ss.ladder_task_loss, accuracy)}, sizes=ss.SIZES[:6],
                  seeds=(0, 1))
  rows.append({**rows[0], "trial": "bad", "status": "diverged", "final": True,
               "final_eval_loss": None, "metrics": {}})
  final = [r for r in rows if r["final"]]
  done = [r for r in final if r["status"] == "completed"]
  n = np.array([r["params"] for r in done], float)
  loss_fit = fits.fit_power_law(n, [r["final_eval_loss"] for r in done], bootstrap=20)
  loss_fit.label = "power law"
  em = np.array([r["metrics"]["arithmetic/+3d/exact_match"] for r in done])
  analysis = {
      "headline": ["arithmetic", "+3d"], "fits": {"loss_vs_params": loss_fit.to_dict()},
      "emergence": {"arithmetic/+3d": emergence.emergence_report(
          np.log10(n), {"exact_match": (em[:, 0], em[:, 1], em[:, 2])}, {"exact_match": 0.0},
          bootstrap=20, task="arithmetic +3d")},
      "prediction": {"arithmetic/+3d": prediction.two_step_prediction(
          rows, "arithmetic", "+3d", max_params=8e6, bootstrap=30)},
      "loss_threshold": prediction.loss_threshold(rows, "arithmetic", "+3d"),
      "emergence_order": prediction.emergence_order(rows, ["arithmetic/+3d"], bootstrap=20),
  }
  figures = d / "figures"
  paths = plots.save(plots.capability_vs_params(final, "arithmetic", "+3d"), figures,
                     "capability_arithmetic_add3d")
  paths += plots.save(plots.loss_vs_params(final, loss_fit), figures, "loss_vs_params")
  for name, fig in (
      ("capability_vs_tokens", prediction_plots.capability_vs_tokens(rows, "arithmetic", "+3d")),
      ("capability_vs_loss", prediction_plots.capability_vs_loss(rows, "arithmetic", "+3d")),
      ("prediction", prediction_plots.prediction_vs_measurement(
          rows, analysis["prediction"]["arithmetic/+3d"]))):
    paths += plots.save(fig, figures, name)
  pngs = [p for p in paths if p.endswith(".png")]
  lead = [(p, "Headline figure.") for p in pngs if "capability_arith" in p or "prediction" in p]
  path = html_report.write_report(
      str(d), title="Sweep <arith> & co", table_rows=rows, analysis=analysis, lead=lead,
      figures=[p for p in paths if p not in dict(lead)],
      texts=["Synthetic sweep: 6 sizes, 2 seeds, <4> checkpoints each."])
  return path, analysis


def test_report_is_self_contained(report):
  path, analysis = report
  assert os.path.basename(path) == "report.html"
  with open(path, encoding="utf-8") as f:
    page = f.read()
  assert "<script" not in page and "<link" not in page and "@import" not in page
  assert not re.search(r"""(?:src|href)\s*=\s*["'](?!data:)""", page)
  assert "url(" not in page
  assert "Sweep &lt;arith&gt; &amp; co" in page and "&lt;4&gt; checkpoints" in page
  images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
  assert len(images) == 5 == page.count("<figcaption>")  # the SVG twins are left out
  assert len(set(images)) == 5  # no figure twice
  # The answer first: the verdict, then the two headline figures; the method collapsed.
  head, details = page.split("<details>", 1)
  assert head.index('class="verdict"') < head.index("<figure>") and head.count("<figure>") == 2
  assert html.escape(html_report.verdict.paragraph(analysis)) in head
  assert "<h2>Results</h2>" in details and details.count("<figure>") == 3
  assert all(base64.b64decode(b).startswith(b"\x89PNG\r\n\x1a\n") for b in images)
  # The table: one row per trial's final checkpoint (12 completed, 1 diverged).
  table = page.split("<h2>Results</h2>", 1)[1].split("</table>", 1)[0]
  assert table.count("<tr>") == 1 + 13
  assert "diverged" in page and "intermediate-checkpoint rows are not shown" in page
  for line in analysis["prediction"]["arithmetic/+3d"]["summary"]:
    assert page.count(html.escape(line)) == 1  # in the prediction section, once
  assert html.escape(analysis["loss_threshold"]["summary"][-1]) in page
  assert "prediction step1" in page and "[95% interval]" in page


@needs_chromium
def test_report_renders_in_chromium(report, tmp_path):
  path, _ = report
  verdict = check_page(path, tmp_path)
  assert verdict["images"] == 5 and _clean(verdict), verdict
  # At a 1280 px wide window the first figure starts within the first screen.
  assert 0 < verdict["first_figure_top"] < 1200, verdict
  shot = tmp_path / "report.png"
  _chromium(tmp_path, f"--window-size={WINDOW[0]},{WINDOW[1]}", "--hide-scrollbars",
            f"--screenshot={shot}", "file://" + os.path.abspath(path))
  assert shot.stat().st_size > 20_000
  with Image.open(shot) as im:
    assert im.size == WINDOW
    pixels = np.asarray(im.convert("RGB"), float)
  grey = pixels.mean(-1)
  assert grey.min() < 60 and grey.max() > 240  # dark text on a light page
  assert 0.01 < (grey < 200).mean() < 0.6  # neither blank nor a solid block
  assert len(np.unique(pixels.reshape(-1, 3).astype(np.uint8), axis=0)) > 100  # figures


BROKEN = {  # fault: (markup, the images the probe should report as not loaded)
    "missing image": ('<img src="no-such-figure.png" alt="missing">', ["missing"]),
    "corrupt data URI": ('<img src="data:image/png;base64,AAAAAAAA" alt="corrupt">',
                         ["corrupt"]),
    "script error": ("<script>undefined_function();</script>", []),
    "console error": ('<script>console.error("something failed");</script>', []),
}


@needs_chromium
@pytest.mark.parametrize("fault", BROKEN)
def test_a_broken_page_fails_the_check(fault, tmp_path):
  page = tmp_path / "broken.html"
  page.write_text("<!DOCTYPE html><html><head><title>t</title></head><body><p>text</p>"
                  + BROKEN[fault][0] + "</body></html>")
  verdict = check_page(str(page), tmp_path)
  assert not _clean(verdict), verdict
  assert verdict["bad"] == BROKEN[fault][1]
  if not verdict["bad"]:
    assert verdict["errors"] and verdict["console"], verdict  # both channels see it
