"""The Snakemake workflow end to end on a tiny config, in a temporary folder."""

import json
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


def test_shipped_quick_suite_plans_and_quotes_its_report_options(tmp_path):
    """The default config (report scenes set) builds its DAG, and the report options reach
    the shell quoted, a folder with a space included."""
    config = (REPO / "config" / "config.yaml").read_text()
    (tmp_path / "config.yaml").write_text(
        config + "\n" if "published:" in config else config.replace(
            "report:", "report:\n  published: ['my papers']", 1))
    result = snakemake(tmp_path, "-n", "--printshellcmds", "results/tables/summary.csv",
                       "results/figures")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert "--scene=synthetic/scene01" in out
    assert "'--published=my papers'" in out


def test_lint_is_clean(tmp_path):
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config.yaml")
    result = snakemake(tmp_path, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- issue 12

#: a command after ';' (it runs when the value reaches the shell unquoted), and a space
HOSTILE_ROOTS = ["data;touch PWNED;echo", "data root"]


@pytest.mark.parametrize("root", HOSTILE_ROOTS)
def test_config_values_reach_the_shell_as_paths(tmp_path, root):
    """Case 8: a data_root with a ';' or a space is a folder name, not a command."""
    (tmp_path / "config.yaml").write_text(textwrap.dedent(f'''
        data_root: "{root}"
        datasets:
          synthetic: {{scenes: [scene01], options: {{size: 32}}}}
        degradations: [gauss-fwhm-x4]
        methods: {{upsample: {{}}}}
    '''))
    result = snakemake(tmp_path, "--cores", "1", "results/scenes/synthetic/scene01.hdr")
    assert not (tmp_path / "PWNED").exists()
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("root", HOSTILE_ROOTS)
def test_download_rule_quotes_the_data_root(tmp_path, root, monkeypatch):
    from hmifbench.datasets.download import BASE_URL_ENV
    from tests.fixtures.formats import make_cave_zip
    from tests.fixtures.http_server import FileServer

    archive = tmp_path / "complete_ms_data.zip"
    make_cave_zip(archive, scenes=("balloons",), size=8, quirk_scene=None)
    with FileServer() as server:
        server.add("/m/complete_ms_data.zip", archive.read_bytes())
        monkeypatch.setenv(BASE_URL_ENV, server.url("/m"))   # never the real server, even unquoted
        (tmp_path / "config.yaml").write_text(textwrap.dedent(f'''
            data_root: "{root}"
            download_base_url: "{server.url('/m')}"
            datasets:
              cave: {{scenes: [balloons]}}
            degradations: [gauss-fwhm-x4]
            methods: {{upsample: {{}}}}
        '''))
        result = snakemake(tmp_path, "--cores", "1", f"{root}/cave/manifest.json")
    assert not (tmp_path / "PWNED").exists()
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / root / "cave" / "manifest.json").is_file()


WAITING_PLUGIN = textwrap.dedent('''
    import time
    from pathlib import Path

    from hmifbench.methods import Method

    class Waits(Method):
        """Waits while the file WAIT exists in the working folder, then raises."""
        name = "waits"
        blind = True
        citation = "test"

        def fuse(self, problem, *, state=None, seed=0, device="auto", progress=None):
            while Path("WAIT").exists():
                time.sleep(0.2)
            raise RuntimeError("done waiting")
''')


def _readme_recovery_sentence():
    import re

    text = " ".join((REPO / "README.md").read_text().split())
    match = re.search(r"[^.]*Snakemake process itself was killed[^.]*\.", text)
    assert match, "README no longer says what to do after a killed run"
    return match.group(0)


def test_readme_recovery_after_a_killed_snakemake(tmp_path):
    """Case 12: Snakemake killed while a job runs; the job finishes on its own (as when the
    login session drops). "Unlock, then the same command" stops on the job's output, marked
    incomplete; README's advice must get past that."""
    import os
    import re
    import signal
    import time

    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "waits.py").write_text(WAITING_PLUGIN)
    (tmp_path / "config.yaml").write_text(textwrap.dedent('''
        plugins: [plugins]
        datasets:
          synthetic: {scenes: [scene01], options: {size: 32}}
        degradations: [gauss-fwhm-x4]
        methods: {waits: {}}
    '''))
    (tmp_path / "WAIT").touch()
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe), "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(tmp_path / "config.yaml"), "--cores", "1"]
    run_json = tmp_path / "results/fused/waits/synthetic/gauss-fwhm-x4/scene01/run.json"
    log = tmp_path / "results/logs/fuse/waits/synthetic/gauss-fwhm-x4/scene01.log"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not log.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert log.exists(), "the fuse job never started"
        time.sleep(2)
        os.kill(proc.pid, signal.SIGKILL)           # Snakemake dies; its job goes on
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    (tmp_path / "WAIT").unlink()
    deadline = time.monotonic() + 120
    while not run_json.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert run_json.exists()
    assert subprocess.run(cmd[:-2] + ["--unlock", "--cores", "1"], capture_output=True).returncode == 0
    plain = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert plain.returncode != 0 and "incomplete" in (plain.stdout + plain.stderr).lower()
    advice = _readme_recovery_sentence()
    flags = [f for f in re.findall(r"--[a-z-]+", advice) if f != "--unlock" and f != "--cores"]
    assert "--rerun-incomplete" in flags, advice
    rerun = subprocess.run(cmd + ["--rerun-incomplete"], capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    per_scene = pd.read_csv(tmp_path / "results/tables/per_scene.csv")
    assert list(per_scene["status"]) == ["failed"]


KILLED_PLUGIN = textwrap.dedent('''
    import os
    import signal
    from pathlib import Path

    from hmifbench.methods import Method
    from hmifbench.methods.upsample import Upsample

    class AlwaysKilled(Method):
        """Killed by SIGKILL in every run, as by the out-of-memory killer."""
        name = "always_killed"
        blind = True
        citation = "test"

        def fuse(self, problem, *, state=None, seed=0, device="auto", progress=None):
            os.kill(os.getpid(), signal.SIGKILL)

    class KilledOnce(Upsample):
        """Killed on its first run only (as when the retry's extra memory suffices)."""
        name = "killed_once"

        def fuse(self, problem, *, state=None, seed=0, device="auto", progress=None):
            marker = Path("killed_once.ran")
            if not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            return super().fuse(problem, state=state, seed=seed, device=device, progress=progress)
''')


@pytest.mark.parametrize("retries", [0, 1])
def test_killed_method_is_retried_then_recorded_and_the_tables_are_made(tmp_path, retries):
    """Case 6: a method's death by a signal fails its job while a retry is left (so the
    scheduler retries it with more memory) and is recorded as failed on the last attempt."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "killed.py").write_text(KILLED_PLUGIN)
    (tmp_path / "config.yaml").write_text(textwrap.dedent('''
        plugins: [plugins]
        datasets:
          synthetic: {scenes: [scene01], options: {size: 32}}
        degradations: [gauss-fwhm-x4]
        methods: {always_killed: {}, killed_once: {}}
    '''))
    result = snakemake(tmp_path, "--cores", "1", "--retries", str(retries))
    assert result.returncode == 0, result.stderr[-3000:]
    per_scene = pd.read_csv(tmp_path / "results/tables/per_scene.csv").set_index("entry")
    assert per_scene.loc["always_killed", "status"] == "failed"
    assert "SIGKILL" in per_scene.loc["always_killed", "error"]
    run = json.loads((tmp_path / "results/fused/always_killed/synthetic/gauss-fwhm-x4/scene01/run.json")
                     .read_text())
    assert run["signal"] == "SIGKILL" and run["timing"]["peak_rss_mb"] > 0
    # Without retries the first death is final; with one, the retry of killed_once succeeds.
    assert per_scene.loc["killed_once", "status"] == ("ok" if retries else "failed")


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
