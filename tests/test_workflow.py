"""The Snakemake workflow end to end on a tiny config, in a temporary folder."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

FAILING_PLUGIN = textwrap.dedent('''
    from hmifbench.methods import Method

    class AlwaysFails(Method):
        """A method that raises, to check that failures reach the tables."""
        name = "always_fails"
        blind = True
        citation = "test"

        def fuse(self, problem, *, state=None, seed=0, device="auto", progress=None):
            raise RuntimeError("deliberate failure")
''')

CONFIG = textwrap.dedent('''
    seed: 0
    plugins: [plugins]
    datasets:
      synthetic:
        scenes: [scene01, scene02]
        options: {size: 32}
    degradations: [gauss-fwhm-x4]
    methods:
      upsample: {}
      gsa: {}
      gsa-ridge:
        method: gsa
        params: {ridge: 0.001}
      always_fails: {}
''')


def snakemake(workdir, *args, timeout=300):
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe), "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("wf")
    (work / "plugins").mkdir()
    (work / "plugins" / "always_fails.py").write_text(FAILING_PLUGIN)
    (work / "config.yaml").write_text(CONFIG)
    result = snakemake(work, "--cores", "2", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return work


def test_tables_written_and_gsa_beats_upsample(finished_run):
    summary = pd.read_csv(finished_run / "results" / "tables" / "summary.csv")
    mean = summary.set_index(["entry", "metric"])["mean"]
    assert mean["gsa", "psnr"] > mean["upsample", "psnr"] + 3
    assert mean["gsa", "sam"] < mean["upsample", "sam"]
    assert mean["gsa", "ergas"] < mean["upsample", "ergas"]
    assert set(summary["entry"]) == {"upsample", "gsa", "gsa-ridge", "always_fails"}
    assert set(summary["profile"].dropna()) == {"canonical"}


def test_failed_method_shows_as_failed(finished_run):
    per_scene = pd.read_csv(finished_run / "results" / "tables" / "per_scene.csv")
    # exactly this config's runs: the default config/config.yaml is replaced, not merged in
    assert len(per_scene) == 2 * 4 and set(per_scene["scene"]) == {"scene01", "scene02"}
    failed = per_scene[per_scene["entry"] == "always_fails"]
    assert len(failed) == 2 and (failed["status"] == "failed").all()
    assert failed["error"].str.contains("deliberate failure").all()
    md = (finished_run / "results" / "tables" / "summary.md").read_text()
    assert "| always_fails | failed |" in md


def test_rerun_has_nothing_to_do(finished_run):
    result = snakemake(finished_run, "-n", "--cores", "1")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_bad_config_names_the_key(tmp_path):
    (tmp_path / "config.yaml").write_text(CONFIG.replace("seed: 0", "sed: 0").replace("plugins: [plugins]", ""))
    result = snakemake(tmp_path, "-n")
    assert result.returncode != 0
    assert "config key sed: unknown key" in result.stderr + result.stdout


def test_lint_is_clean(tmp_path):
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config.yaml")
    result = snakemake(tmp_path, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_report_tables_and_figures_written(finished_run):
    tables = finished_run / "results" / "tables"
    for name in ("summary.csv", "summary.md", "summary.tex", "summary.html", "per_scene.csv",
                 "statistics.csv", "friedman.csv", "statistics.md", "cost.csv", "cost.md",
                 "cost.tex", "published.csv", "published.md", "published.tex"):
        assert (tables / name).stat().st_size > 0, name
    figures = finished_run / "results" / "figures"
    for kind in ("fig1_maps", "fig2_spectra", "fig3_distributions", "fig4_cost", "fig7_cd"):
        assert list(figures.glob(f"{kind}_*.png")) and list(figures.glob(f"{kind}_*.pdf")), kind


def _chromium():
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)


def _headless(browser, *args, timeout=120):
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--virtual-time-budget=10000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


# Loads every figure embedded in the report as an image and writes its decoded size into the
# page, so that the browser itself says whether each figure loads.
IMAGE_PROBE = """<!DOCTYPE html><html><body><pre id="out">pending</pre><script>
const uris = %s; const res = []; let done = 0;
uris.forEach((u, i) => { const im = new Image();
  im.onload = () => { res[i] = im.naturalWidth + "x" + im.naturalHeight; finish(); };
  im.onerror = () => { res[i] = "error"; finish(); }; im.src = u; });
function finish() { if (++done === uris.length) document.getElementById("out").textContent = res.join(" "); }
</script></body></html>"""


# Clicks through the report as a reader would (Figures, 1. maps, the eye of the first scene)
# and records the width of the figure the report then shows.
NAVIGATE = """<script>
function clickText(t) { const el = [...document.querySelectorAll("a,button,span,div,li,td,p")]
  .filter(e => e.textContent.trim() === t).pop(); if (el) el.click(); }
const steps = [() => clickText("Figures"), () => clickText("1. maps"),
  () => document.querySelector("a[iconname=eye]").click(),
  () => { const im = [...document.images].find(i => i.src.startsWith("data:image/png"));
          document.body.setAttribute("data-shown", im ? im.naturalWidth : -1); }];
function run(i) { if (i < steps.length) { try { steps[i](); } catch (e) {
  document.body.setAttribute("data-error", String(e)); } setTimeout(() => run(i + 1), 700); } }
setTimeout(() => run(0), 1500);
</script></body>"""


def test_html_report_renders_in_a_browser(finished_run):
    """`snakemake --report report.html`, opened in headless Chromium as a person would: the
    page renders its menu, a figure opens from it, and every embedded figure decodes."""
    import json
    import re

    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium (apt-get install -y chromium)")
    result = snakemake(finished_run, "--report", "report.html")
    assert result.returncode == 0, result.stderr[-3000:]
    page = finished_run / "report.html"
    html = page.read_text()
    dom = _headless(browser, "--dump-dom", page.as_uri()).stdout
    for category in ("Tables", "Figures", "Cost", "Runs"):   # menu entries the app rendered
        assert re.search(rf">\s*{category}\s*<", dom), category

    clicked = finished_run / "report_figure1.html"
    at = html.rfind("</body>")
    clicked.write_text(html[:at] + NAVIGATE + html[at + len("</body>"):])
    shot = finished_run / "report.png"
    _headless(browser, "--window-size=1400,1000", f"--screenshot={shot}", clicked.as_uri())
    from matplotlib.image import imread

    assert imread(shot)[..., :3].std() > 0.05, "the report renders blank"
    shown = re.search(r'data-shown="(-?\d+)"', _headless(browser, "--dump-dom", clicked.as_uri()).stdout)
    assert shown and int(shown.group(1)) > 300, "figure 1 does not open in the report"

    uris = re.findall(r'"data_uri": "(data:image/png;[^"]+)"', html)
    pngs = sorted((finished_run / "results" / "figures").glob("*.png"))
    assert len(uris) == len(pngs) > 0
    probe = finished_run / "probe.html"
    probe.write_text(IMAGE_PROBE % json.dumps(uris))
    out = re.search(r'<pre id="out">([^<]*)</pre>', _headless(browser, "--dump-dom", probe.as_uri()).stdout)
    sizes = out.group(1).split()
    assert len(sizes) == len(pngs) and "error" not in sizes, sizes
    assert all(int(s.split("x")[0]) > 300 for s in sizes)
