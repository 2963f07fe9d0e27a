"""Released model weights: the registry (``hmifbench/weights.yaml``) and where files live.

A method parameter such as ``mossfuse: {params: {weights: mossfuse-cave-x32}}`` names either a
registered release or a file path. :func:`resolve` turns it into a checked file path:

* a registered name → ``<models root>/<name>/<file>``, whose size and sha256 must equal the
  registry's (a missing file gives an error that says how to download it);
* anything else → a path to an existing file (no checksum to compare; the method still checks
  every tensor's name and shape).

The models root is, in order: the ``root`` argument, the environment variable
``HMIFBENCH_MODELS`` (the workflow sets it from the config key ``models_root``), or
``resources/models``. Downloading is :func:`hmifbench.datasets.models.download_weights`
(``hmifbench download --model NAME``); this module only reads, so methods can use it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from hmifbench.errors import InputError

#: Environment variable naming the models root.
MODELS_ROOT_ENV = "HMIFBENCH_MODELS"
DEFAULT_MODELS_ROOT = "resources/models"


@dataclass(frozen=True)
class WeightsSpec:
    """One registered release (see the comments in ``weights.yaml``)."""

    name: str
    method: str
    file: str
    urls: tuple[str, ...]
    sha256: str
    size: int
    title: str = ""
    homepage: str = ""
    licence: str = ""
    citation: str = ""
    config: dict = field(default_factory=dict)
    trained_on: str = ""
    note: str = ""

    def path(self, root=None) -> Path:
        """Where the file is kept: ``<models root>/<name>/<file>``."""
        return models_root(root) / self.name / self.file


def parse_registry(data: dict) -> dict[str, WeightsSpec]:
    """``weights.yaml`` as :class:`WeightsSpec` records, validated."""
    out = {}
    for name, d in (data.get("weights") or {}).items():
        where = f"weights registry: {name}"
        missing = [k for k in ("method", "file", "urls", "sha256", "size") if not d.get(k)]
        if missing:
            raise InputError(f"{where}: missing {missing}")
        sha = str(d["sha256"]).lower()
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise InputError(f"{where}: sha256 must be 64 hex digits")
        if "/" in d["file"] or d["file"].startswith("."):
            raise InputError(f"{where}: file must be a plain file name, got {d['file']!r}")
        out[name] = WeightsSpec(name=name, method=d["method"], file=d["file"], urls=tuple(d["urls"]),
                                sha256=sha, size=int(d["size"]), title=d.get("title", ""),
                                homepage=d.get("homepage", ""), licence=str(d.get("licence", "")).strip(),
                                citation=str(d.get("citation", "")).strip(), config=dict(d.get("config") or {}),
                                trained_on=str(d.get("trained_on", "")).strip(),
                                note=str(d.get("note", "")).strip())
    return out


@lru_cache(maxsize=1)
def registry() -> dict[str, WeightsSpec]:
    """The releases shipped with the package."""
    import yaml

    return parse_registry(yaml.safe_load(resources.files("hmifbench").joinpath("weights.yaml").read_text()))


def available(method: str | None = None) -> list[str]:
    """Registered release names (for ``method`` only, when given), sorted."""
    return sorted(n for n, s in registry().items() if method is None or s.method == method)


def get_spec(name: str) -> WeightsSpec:
    try:
        return registry()[name]
    except KeyError:
        raise InputError(f"no registered weights {name!r}; registered: {available()}") from None


def models_root(root=None) -> Path:
    return Path(root or os.environ.get(MODELS_ROOT_ENV) or DEFAULT_MODELS_ROOT)


def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def is_downloaded(name: str, root=None) -> bool:
    """True when the registered file is in place with the registry's size (not hashed)."""
    path = get_spec(name).path(root)
    return path.is_file() and path.stat().st_size == get_spec(name).size


def check_reference(ref: str, method: str | None = None) -> None:
    """Raise unless ``ref`` is a registered release (of ``method``) or an existing file; for
    parameter validation, before anything is downloaded."""
    if ref in registry():
        spec = registry()[ref]
        if method is not None and spec.method != method:
            raise InputError(f"weights {ref!r} are for method {spec.method!r}, not {method!r}")
        return
    if not Path(ref).is_file():
        raise InputError(f"weights {ref!r} is neither a registered release "
                         f"({', '.join(available(method)) or 'none'}) nor an existing file")


def resolve(ref: str, root=None) -> tuple[Path, WeightsSpec | None]:
    """The checked file of ``ref`` (a registered name or a path) and its registry record
    (None for a plain path).

    Raises
    ------
    InputError
        The registered file is missing (the message says how to download it) or does not
        have the registry's size and sha256; or the path does not exist.
    """
    if ref not in registry():
        check_reference(ref)
        return Path(ref), None
    spec = registry()[ref]
    path = spec.path(root)
    if not path.is_file():
        raise InputError(
            f"weights {ref!r} are not downloaded: expected {path}. Run `hmifbench download --model "
            f"{ref} --root {path.parent.parent}` (needs network access), or put {spec.file} "
            f"({spec.size} bytes, sha256 {spec.sha256}, from {spec.urls[0]}) there.")
    size = path.stat().st_size
    if size != spec.size or sha256_of(path) != spec.sha256:
        raise InputError(f"{path}: does not match the registry for {ref!r} (size {size}, expected "
                         f"{spec.size}; sha256 must be {spec.sha256}); delete it and download again")
    return path, spec
