"""``hmifbench new-method``: write a ready-to-edit method plugin into a plugin folder.

The plugin is one module (a documented :class:`~hmifbench.methods.Method` subclass that runs as
is and passes the conformance checks) and one test file that runs the checks through
:func:`hmifbench.testing.check_method`. Templates live in ``hmifbench/templates/``.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass
from pathlib import Path

from hmifbench.method import NAME_PATTERN
from hmifbench.errors import InputError

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass
class Scaffold:
    """What :func:`new_method` wrote."""

    name: str
    class_name: str
    module: Path
    test: Path
    plugin_dir: Path

    def instructions(self) -> str:
        """How to check the new plugin and enable it in the workflow."""
        d = _display(self.plugin_dir)
        return "\n".join([
            f"wrote {_display(self.module)}  (the method: edit fuse() and the metadata)",
            f"wrote {_display(self.test)}  (runs the hmifbench conformance checks)",
            "",
            "Check it:",
            f"  hmifbench methods --plugins {d}",
            f"  hmifbench check-method {self.name} --plugins {d}",
            f"  python -m pytest {_display(self.test)}",
            "",
            "Enable it in the workflow (config/config.yaml):",
            f"  plugins: [{d}]",
            "  methods:",
            f"    {self.name}: {{}}            # or {{params: {{...}}, resources: {{mem_mb: ...}}}}",
        ])


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def class_name(name: str) -> str:
    """``my_method`` → ``MyMethod``."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def check_name(name: str) -> None:
    """Raise InputError unless ``name`` can be a method name (and a Python module name)."""
    if not NAME_PATTERN.match(name or "") or keyword.iskeyword(name):
        raise InputError(f"method name {name!r} must be a lower-case identifier: letters, digits "
                         "and underscores, starting with a letter (e.g. 'my_fusion')")


def render(template: str, **values) -> str:
    """Fill ``{{key}}`` placeholders of a template file (Python's own braces stay untouched)."""
    text = (TEMPLATES / template).read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", str(value))
    if "{{" in text:
        raise RuntimeError(f"template {template} has an unfilled placeholder")
    return text


def new_method(name: str, plugin_dir="plugins", *, deep: bool = False,
               force: bool = False) -> Scaffold:
    """Write ``<plugin_dir>/<name>.py`` and ``<plugin_dir>/test_<name>.py``.

    Parameters
    ----------
    name : str
        The method's registry name (lower-case identifier).
    plugin_dir : path
        The plugin folder (created if needed); list it under ``plugins:`` in the config.
    deep : bool
        Start from the deep template (a small torch CNN trained per scene) instead of the
        linear one (upsampling plus MSI detail injection).
    force : bool
        Overwrite existing files and allow shadowing a registered method's name.

    Raises
    ------
    InputError
        Bad name, a name already registered, or files that exist (without ``force``).
    """
    from hmifbench import registry

    check_name(name)
    if name in registry.available() and not force:
        source = registry.get_class(name).describe()["class"]
        raise InputError(f"a method named {name!r} is already registered ({source}); choose "
                         "another name (or --force to shadow it from the plugin folder)")
    folder = Path(plugin_dir)
    module, test = folder / f"{name}.py", folder / f"test_{name}.py"
    existing = [str(p) for p in (module, test) if p.exists()]
    if existing and not force:
        raise InputError(f"{', '.join(existing)} already exist(s); use --force to overwrite")
    folder.mkdir(parents=True, exist_ok=True)
    values = {"name": name, "Class": class_name(name), "plugin_dir": _display(folder),
              "test_path": _display(test)}
    module.write_text(render("method_deep.py.tmpl" if deep else "method_linear.py.tmpl", **values))
    test.write_text(render("test_method.py.tmpl", **values))
    registry.refresh()  # so that a plugin folder registered earlier shows the new file
    return Scaffold(name, values["Class"], module, test, folder)
