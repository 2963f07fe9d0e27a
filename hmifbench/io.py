"""Cube and JSON files: ENVI (.hdr + .img, float32, BSQ) through ``spectral``; atomic writes.

Every writer here writes to a temporary name in the target folder and renames it into place,
so an interrupted run never leaves a file that looks complete.  For an ENVI cube the binary
``.img`` is renamed first and the ``.hdr`` last: a header on disk means the cube is whole.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from hmifbench.cube import Cube
from hmifbench.errors import InputError


@contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def _finite_or_none(obj):
    """JSON has no NaN or inf: write them as strings so the file stays standard JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


def write_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically. Non-finite floats become "inf"/"nan"."""
    text = json.dumps(_finite_or_none(json.loads(json.dumps(obj, default=_json_default))), indent=2)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return Path(path)


def read_json(path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None


def _hdr_path(path) -> Path:
    path = Path(path)
    return path if path.suffix == ".hdr" else path.with_suffix(".hdr")


def write_cube(path, cube, metadata: dict | None = None) -> Path:
    """Write a cube as ENVI float32 BSQ: ``<stem>.hdr`` plus ``<stem>.img``, atomically.

    Parameters
    ----------
    path : str or Path
        The header path (``.hdr``); ``.img`` beside it holds the data.
    cube : Cube or array_like (rows, cols, bands)
        Wavelengths (nm) of a Cube are written to the header.
    metadata : dict, optional
        Extra header fields (ENVI keys).
    """
    import spectral.io.envi as envi

    if not isinstance(cube, Cube):
        cube = Cube(cube)
    hdr = _hdr_path(path)
    img = hdr.with_suffix(".img")
    hdr.parent.mkdir(parents=True, exist_ok=True)
    meta = {"description": "hmifbench cube", **(metadata or {})}
    if cube.wavelengths is not None:
        meta["wavelength"] = [f"{w:.6g}" for w in cube.wavelengths]
        meta["wavelength units"] = "nm"
    fd, tmp_base = tempfile.mkstemp(prefix=f".{hdr.stem}.", suffix=".part", dir=hdr.parent)
    os.close(fd)
    os.unlink(tmp_base)
    tmp_hdr, tmp_img = Path(tmp_base + ".hdr"), Path(tmp_base + ".img")
    try:
        envi.save_image(str(tmp_hdr), cube.data, dtype=np.float32, interleave="bsq",
                        ext=".img", byteorder=0, metadata=meta, force=True)
        os.replace(tmp_img, img)
        os.replace(tmp_hdr, hdr)
    finally:
        tmp_hdr.unlink(missing_ok=True)
        tmp_img.unlink(missing_ok=True)
    return hdr


def read_cube(path) -> Cube:
    """Read an ENVI cube (``.hdr`` path) into a :class:`Cube` with its wavelengths.

    Raises
    ------
    InputError
        If the file is missing, unreadable, or holds NaN or infinite values.
    """
    import spectral.io.envi as envi

    hdr = _hdr_path(path)
    if not hdr.exists():
        raise InputError(f"{hdr}: cube header not found")
    try:
        img = envi.open(str(hdr))
        with warnings.catch_warnings():  # spectral warns on NaN; we raise a clear error below
            warnings.simplefilter("ignore")
            data = np.asarray(img.load(), dtype=np.float32)
    except Exception as err:  # spectral raises a zoo of types for broken files
        raise InputError(f"{hdr}: cannot read ENVI cube ({err})") from None
    if data.ndim == 2:
        data = data[:, :, None]
    if not np.isfinite(data).all():
        raise InputError(f"{hdr}: cube contains NaN or infinite values")
    wl = img.metadata.get("wavelength")
    wavelengths = None
    if wl is not None:
        wavelengths = np.asarray([float(w) for w in wl])
        units = str(img.metadata.get("wavelength units", "nm")).lower()
        if units in ("micrometers", "um", "µm", "microns"):
            wavelengths = wavelengths * 1000.0
    try:
        return Cube(np.ascontiguousarray(data), wavelengths)
    except InputError as err:
        raise InputError(f"{hdr}: {err}") from None
