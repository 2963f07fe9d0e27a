"""The layer rules of docs/architecture.md, read from the source (ast), so they stay true.

* The core's base layer (hmifbench/ minus the driver modules) imports nothing from the plugin
  packages ``hmifbench.methods``, ``hmifbench.metrics`` and ``hmifbench.datasets``.
* The plugin packages import the core's base layer only (never the driver), and not each other
  (``methods`` may not import ``metrics``/``datasets`` and so on); a method module imports no
  other method's module, only private shared helpers (``methods/_*.py``) and its own package.
* Nothing under hmifbench/, methods/, metrics/ or datasets/ reads files of the workflow.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PLUGIN_PACKAGES = {"methods": "hmifbench.methods", "metrics": "hmifbench.metrics",
                   "datasets": "hmifbench.datasets"}
#: Core modules that drive the others (docs/architecture.md); everything else in hmifbench/ is
#: the base layer.
DRIVER = {"cli", "config", "stages", "registry", "scaffold", "testing", "report", "checks", "isolation",
          "plan", "site", "profiles",
          "conformance"}
BASE = {"cube", "io", "errors", "observation", "method", "provenance", "device", "weights"}
#: The one facade: hmifbench.methods re-exports the registry's available()/get() (DESIGN's API).
ALLOWED = {("methods/__init__.py", "hmifbench.registry")}


def _imports(path: Path) -> set[str]:
    """Absolute module names imported by ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parts = path.relative_to(REPO).with_suffix("").parts
    package = ".".join(_dotted(parts)[:-1])
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            names.add(module)
            names |= {f"{module}.{a.name}" for a in node.names}
    return names


def _dotted(parts) -> list[str]:
    top = PLUGIN_PACKAGES.get(parts[0], parts[0]).split(".")
    rest = [p for p in parts[1:] if p != "__init__"]
    return top + rest + ([] if parts[-1] != "__init__" else ["__init__"])


def _layer(module: str) -> str | None:
    """'base', 'driver', 'methods', 'metrics', 'datasets' or None (not hmifbench)."""
    parts = module.split(".")
    if parts[0] != "hmifbench" or len(parts) == 1:
        return None
    if parts[1] in PLUGIN_PACKAGES:
        return parts[1]
    return "driver" if parts[1] in DRIVER else "base"


def _files(folder: str):
    return sorted(p for p in (REPO / folder).rglob("*.py") if ".venv" not in p.parts)


def test_every_core_module_is_classified():
    modules = {p.stem if p.parent.name == "hmifbench" else p.parent.name
               for p in _files("hmifbench")} - {"__init__"}
    assert modules <= DRIVER | BASE, f"classify {sorted(modules - DRIVER - BASE)} in the test"


@pytest.mark.parametrize("path", _files("hmifbench"), ids=lambda p: str(p.relative_to(REPO)))
def test_base_layer_imports_no_plugin_package(path):
    name = path.stem if path.parent.name == "hmifbench" else path.parent.name
    if name in DRIVER or name == "__init__":
        return
    bad = sorted(m for m in _imports(path) if _layer(m) in PLUGIN_PACKAGES or _layer(m) == "driver")
    assert not bad, f"{path.relative_to(REPO)} (base layer) imports {bad}"


@pytest.mark.parametrize("path", [p for f in PLUGIN_PACKAGES for p in _files(f)],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_plugin_packages_import_the_base_layer_only(path):
    rel = path.relative_to(REPO)
    own = rel.parts[0]
    bad = []
    for m in _imports(path):
        layer = _layer(m)
        if layer is None or layer == "base" or any(
                str(rel) == f and (m == a or m.startswith(a + ".")) for f, a in ALLOWED):
            continue
        if layer != own:
            bad.append(m)
        elif own == "methods" and _other_method(m, rel):
            bad.append(m)
    assert not bad, f"{rel} imports {sorted(bad)}"


def _other_method(module: str, rel: Path) -> bool:
    """Whether ``module`` is another method's module (not a private ``_`` helper, not base.py,
    not the importing file's own package)."""
    parts = module.split(".")
    if len(parts) < 3:
        return False
    sub = parts[2]
    is_module = (REPO / "methods" / f"{sub}.py").exists() or (REPO / "methods" / sub).is_dir()
    own = rel.parts[1].removesuffix(".py") if len(rel.parts) > 1 else None
    return is_module and not sub.startswith("_") and sub not in ("base", own)


@pytest.mark.parametrize("folder", ["hmifbench", *PLUGIN_PACKAGES])
def test_no_package_code_reads_workflow_files(folder):
    offenders = []
    for path in _files(folder):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value in ("workflow", "workflow/schemas"):
                offenders.append(str(path.relative_to(REPO)))
    assert not offenders


def test_the_schema_ships_with_the_package():
    from hmifbench.config import SCHEMA_PATH

    import hmifbench

    assert SCHEMA_PATH.is_file()
    assert Path(hmifbench.__file__).parent in SCHEMA_PATH.parents


def test_registry_imports_no_method_package():
    """The old hidden loop: methods/__init__ → registry → methods.base inside a function."""
    code = ("import sys, hmifbench.registry; "
            "print(sorted(m for m in sys.modules if m.startswith('hmifbench.methods')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_package_folder_is_listed_in_pyproject():
    """The package list is explicit (no top-level ``datasets``), so a new subpackage must be
    added to it by hand or a wheel built from the repository would leave it out."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for folder in ("hmifbench", *PLUGIN_PACKAGES):
        for init in (REPO / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO).parts
            found.add(".".join(_dotted(parts + ("__init__",))[:-1]))
    assert found == listed, f"missing {sorted(found - listed)}, stale {sorted(listed - found)}"
