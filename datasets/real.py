"""The base class of datasets read from files, and the file helpers their readers share.

Every such dataset is a :class:`RealDataset` registered under its name.
``load(scene, root, **options)`` returns the ground-truth cube; ``read(...)`` returns
``(cube, info)`` where ``info`` records what was done (source file, normalisation and its
factor, crop, quirks met) so that ``hmifbench prepare`` can store it with the cube. ``root`` is
the dataset's folder, ``<data root>/<name>`` (what ``hmifbench download`` filled). The options
shared by several readers (``crop``, ``position``, ``normalise``) are described in
:mod:`hmifbench.datasets.options`.

Bad or missing files raise :class:`~hmifbench.errors.InputError` naming the file and the problem.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from hmifbench.cube import Cube
from hmifbench.datasets.base import Dataset
from hmifbench.errors import InputError


class RealDataset(Dataset):
    """A dataset read from files under ``root`` (``<data root>/<name>``)."""

    bands_nm: np.ndarray | None = None
    hint = "run `hmifbench download NAME` first"

    def read(self, scene: str, root=None, **options) -> tuple[Cube, dict]:
        raise NotImplementedError

    def _hint(self):
        return self.hint.replace("NAME", self.name)

    def _scene_file(self, root, scene: str, suffix: str = ".mat") -> Path:
        """The first ``<scene><suffix>`` under ``root``, or an InputError saying where it looked."""
        hits = find_files(root, f"{scene}{suffix}", f"{self.name}/{scene}", self._hint())
        if not hits:
            raise InputError(f"{self.name}: scene {scene!r} not found under {root} "
                             f"(looked for **/{scene}{suffix}); {self._hint()}")
        return hits[0]


def find_files(root: Path, pattern: str, what: str, hint: str) -> list[Path]:
    """Files under ``root`` matching ``pattern`` (recursively, hidden folders skipped), sorted."""
    if root is None:
        raise InputError(f"{what}: no dataset folder given (root=None)")
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{what}: dataset folder {root} does not exist; {hint}")
    return sorted(p for p in root.rglob(pattern)
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))


def finite(x: np.ndarray, path: Path) -> np.ndarray:
    """``x``, or :class:`InputError` when it holds NaN or infinite values."""
    if not np.isfinite(x).all():
        raise InputError(f"{path}: {int(np.size(x) - np.isfinite(x).sum())} NaN or infinite values")
    return x


def read_info(dataset, scene, path, root, **more) -> dict:
    """The ``info`` record of a read: dataset, scene, source file relative to ``root``, and more."""
    try:
        rel = str(Path(path).relative_to(root))
    except ValueError:
        rel = str(path)
    return {"dataset": dataset, "scene": scene, "source": rel, **more}


def raster_wavelengths(ds, n: int) -> tuple[np.ndarray | None, str]:
    """Band centres (nm) from an open rasterio dataset's band descriptions or tags, when it has
    them: ``(wavelengths, where from)``, or ``(None, "")``."""
    values = []
    for i in range(1, n + 1):
        tags = {k.lower(): v for k, v in ds.tags(i).items()}
        text = tags.get("wavelength") or tags.get("center_wavelength") or (ds.descriptions[i - 1] or "")
        m = re.search(r"(\d+(?:\.\d+)?)", str(text))
        if not m:
            return None, ""
        values.append(float(m.group(1)))
    wl = np.array(values)
    if wl.max() < 10:                              # micrometres
        wl = wl * 1000.0
    # Plausible optical band centres only: a description like "Band 7" is not a wavelength.
    if np.all(np.diff(wl) > 0) and 300.0 <= wl.min() and wl.max() <= 2600.0:
        return wl, "band metadata of the file"
    return None, ""


def open_raster(path: Path):
    """``rasterio.open(path)``, with :class:`InputError` naming the file when it cannot."""
    import rasterio

    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as err:
        raise InputError(f"{path}: cannot open with rasterio ({err})") from None
