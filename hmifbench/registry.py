"""Method discovery: the ``hmifbench.methods`` entry-point group plus plugin folders.

Built-in methods are registered through entry points exactly like third-party packages.
A plugin folder is a directory of ``*.py`` files; every :class:`~hmifbench.method.Method`
subclass with a ``name`` defined in one of them is registered. Folders come from the config's
``plugins:`` list, :func:`add_plugin_path`, or the ``HMIFBENCH_PLUGINS`` environment variable
(paths separated by ``os.pathsep``), which is how workflow jobs inherit them.

Loading a method imports its module, which must stay light (no torch at module level).
A plugin that fails to import does not break discovery: it is listed in :func:`load_errors`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

from hmifbench.errors import InputError, MethodNotFound
from hmifbench.method import Method

GROUP = "hmifbench.methods"
_extra_paths: list[Path] = []
_cache: dict | None = None
_errors: dict[str, str] = {}


def add_plugin_path(path) -> None:
    """Register a plugin folder (or a single ``.py`` file) for discovery."""
    global _cache
    p = Path(path).resolve()
    if not p.exists():
        raise InputError(f"plugin path {path} does not exist")
    if p not in _extra_paths:
        _extra_paths.append(p)
        _cache = None


def plugin_paths() -> list[Path]:
    env = [Path(p).resolve() for p in os.environ.get("HMIFBENCH_PLUGINS", "").split(os.pathsep) if p]
    return list(dict.fromkeys(env + _extra_paths))


def _method_classes(module):
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if issubclass(obj, Method) and obj is not Method and obj.name and obj.__module__ == module.__name__:
            yield obj


def _load_file(path: Path):
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    modname = f"hmifbench_plugin_{path.stem}_{digest}"
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[modname]
        raise
    return module


def _discover() -> dict:
    found: dict = {}
    _errors.clear()
    for ep in entry_points(group=GROUP):
        try:
            cls = ep.load()
        except Exception as err:  # a broken plugin must not hide the others
            _errors[ep.name] = f"entry point {ep.value}: {type(err).__name__}: {err}"
            continue
        found.setdefault(cls.name or ep.name, cls)
    for folder in plugin_paths():
        files = [folder] if folder.is_file() else sorted(folder.glob("*.py"))
        for f in files:
            if f.name.startswith(("_", "test_")):
                continue
            try:
                module = _load_file(f)
            except Exception as err:
                _errors[str(f)] = f"{type(err).__name__}: {err}"
                continue
            for cls in _method_classes(module):
                found[cls.name] = cls  # a plugin folder may override a built-in on purpose
    return found


def registry() -> dict:
    """Mapping name → Method class of everything discovered (cached)."""
    global _cache
    if _cache is None:
        _cache = _discover()
    return _cache


def refresh() -> None:
    global _cache
    _cache = None


def load_errors() -> dict[str, str]:
    """Plugins that failed to load, with the reason."""
    registry()
    return dict(_errors)


def available() -> list[str]:
    """Names of every registered method, sorted."""
    return sorted(registry())


def get_class(name: str):
    try:
        return registry()[name]
    except KeyError:
        hint = f" (it failed to load: {_errors[name]})" if name in _errors else ""
        if not hint and _errors:  # a plugin file that failed to load may be the one wanted
            hint = "; plugins that failed to load: " + "; ".join(f"{k}: {v}" for k, v in _errors.items())
        raise MethodNotFound(f"no method named {name!r}{hint}; registered: {', '.join(available())}") from None


def get(name: str, **params):
    """An instance of method ``name`` with ``params`` overriding its defaults."""
    return get_class(name)(**params)
