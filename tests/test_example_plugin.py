"""Methods from outside the suite, end to end.

* Building the workflow's DAG imports method modules for their metadata but never torch or a
  method's implementation (``snakemake -n`` with recording stand-ins for both).
* The example package (examples/hmifbench-example-plugin), really pip-installed (into a
  temporary ``--target`` folder, leaving the project's environment alone), is found through its
  entry point, passes the checks, and runs through the workflow next to a built-in and a plugin
  written by ``hmifbench new-method``; all three appear in results/tables/summary.csv.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

from hmifbench import registry
from hmifbench.cli import main
from hmifbench.testing import check_method

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "hmifbench-example-plugin"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.integration


def _env(*pythonpath) -> dict:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("HMIFBENCH_PLUGINS", None)
    return env


def _config(path: Path, methods: dict, plugins=(), **extra) -> Path:
    config = {"seed": 0, "allow_cpu_fallback": True, "plugins": [str(p) for p in plugins],
              "datasets": {"synthetic": {"scenes": ["scene01"], "train_scenes": ["scene02"],
                                         "options": {"size": 32}}},
              "degradations": ["gauss-fwhm-x4"], "methods": methods, **extra}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _snakemake(workdir: Path, *args, env):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


_MARKER = """
import os
with open(os.environ["HMIF_DAG_MARKERS"], "a") as f:
    f.write(__name__ + "\\n")
"""


def test_building_the_dag_imports_no_torch_and_no_implementation(tmp_path):
    """Every built-in plus a plugin whose fuse() imports its implementation are configured;
    a dry run builds the DAG with a stand-in ``torch`` and a stand-in implementation module
    first on the path, each of which records that it was imported (by any mechanism) and
    then fails loudly. Neither may be imported; the plugin's own module-level import of a light
    metadata module must be (the control that the recording works in that process)."""
    lib, plugins, work = tmp_path / "lib", tmp_path / "plugins", tmp_path / "work"
    (lib / "torch").mkdir(parents=True)
    plugins.mkdir()
    markers = tmp_path / "imported.txt"
    loud = "raise RuntimeError(f'{__name__} was imported while building the DAG')\n"
    (lib / "torch" / "__init__.py").write_text(_MARKER + loud)
    (lib / "hmif_sentinel_impl.py").write_text(_MARKER + loud)
    (lib / "hmif_sentinel_metadata.py").write_text(_MARKER)
    (plugins / "sentinel_method.py").write_text(textwrap.dedent('''
        import hmif_sentinel_metadata  # noqa: F401  (light: allowed at module level)
        from hmifbench.methods import Fused, Method, Resources

        class Sentinel(Method):
            """Metadata here; the implementation is imported inside fuse()."""
            name = "dag_sentinel"
            family = "deep"
            blind = True
            resources = Resources(gpu=1, mem_mb=3000, runtime_min=7)
            citation = "test"
            licence = "test"

            def fuse(self, problem, **kw):
                import hmif_sentinel_impl  # noqa: F401
                import torch  # noqa: F401
    '''))
    builtins = []
    for ep in entry_points(group=registry.GROUP):
        if ep.dist is not None and ep.dist.name == "hmifbench":
            try:
                ep.load()
                builtins.append(ep.name)
            except ModuleNotFoundError:
                continue  # not landed in this checkout yet
    assert {"upsample", "gsa"} <= set(builtins)
    methods = {name: {} for name in builtins} | {"dag_sentinel": {}}
    _config(work / "config.yaml", methods, plugins=[plugins])
    env = {**_env(lib), "HMIF_DAG_MARKERS": str(markers)}
    proc = _snakemake(work, "-n", "--cores", "1", env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    imported = markers.read_text().split() if markers.exists() else []
    assert imported == ["hmif_sentinel_metadata"]
    # Every configured method got its fuse rule; the plugin's with its own resources.
    log = proc.stdout + proc.stderr
    for name in builtins:
        assert f"rule fuse_{name}:" in log
    sentinel = log[log.index("rule fuse_dag_sentinel:"):].split("rule ", 2)[1]
    assert "runtime=7," in sentinel and "mem_mb=3000," in sentinel


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """``pip install`` the example package into a fresh folder (a real install: wheel built by
    its own pyproject.toml, dist-info with the entry point), from a copy of the sources so the
    build leaves nothing in the repository."""
    tmp = tmp_path_factory.mktemp("example")
    src = tmp / "src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = tmp / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
           "--quiet", "--disable-pip-version-check", "--target", str(site), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert list(site.glob("hmifbench_example_plugin-*.dist-info/entry_points.txt"))
    return site


@pytest.fixture
def example_on_path(installed_example, monkeypatch):
    monkeypatch.syspath_prepend(str(installed_example))
    registry.refresh()
    yield installed_example
    registry.refresh()


def test_installed_example_is_found_through_its_entry_point_and_passes_the_checks(example_on_path):
    cls = registry.get_class("msi_regression")
    assert cls.__module__ == "hmifbench_example_plugin.method"
    assert Path(sys.modules[cls.__module__].__file__).is_relative_to(example_on_path)
    check_method("msi_regression")  # every check, the import check included


def test_plugins_run_through_the_workflow_into_the_tables(installed_example, tmp_path, capsys):
    plugins, work = tmp_path / "plugins", tmp_path / "work"
    try:
        assert main(["new-method", "my_fusion", "--dir", str(plugins)]) == 0
    finally:
        registry.refresh()
    assert "my_fusion: {}" in capsys.readouterr().out
    env = _env(installed_example)

    listing = subprocess.run(["hmifbench", "methods", "--plugins", str(plugins)], env=env,
                             capture_output=True, text=True, check=True).stdout
    table = listing.split("\n\n")[0]  # the methods; released weights are listed below it
    rows = {line.split()[0]: line for line in table.splitlines()[1:]}
    assert "hmifbench_example_plugin.method:MSIRegression" in rows["msi_regression"]
    assert "hmifbench_plugin_my_fusion" in rows["my_fusion"]

    try:
        assert main(["check-method", "my_fusion", "--plugins", str(plugins)]) == 0
    finally:
        registry._extra_paths.remove(plugins.resolve())
        registry.refresh()
    assert "0 failed" in capsys.readouterr().out.splitlines()[-1]

    methods = {"upsample": {}, "msi_regression": {"params": {"backprojection_steps": 2}},
               "my_fusion": {}}
    _config(work / "config.yaml", methods, plugins=[plugins])
    proc = _snakemake(work, "--cores", "2", env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    with open(work / "results" / "tables" / "summary.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    psnr = {r["entry"]: r for r in summary if r["metric"] == "psnr"}
    assert set(psnr) == set(methods)
    for entry, row in psnr.items():
        assert row["n_ok"] == "1" and row["n_failed"] == "0", row
    # The fusion methods use the MSI: they beat upsampling on this scene.
    assert float(psnr["msi_regression"]["mean"]) > float(psnr["upsample"]["mean"]) + 3
    assert float(psnr["my_fusion"]["mean"]) > float(psnr["upsample"]["mean"]) + 3
