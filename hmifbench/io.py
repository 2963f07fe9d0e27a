"""Cube and JSON files: ENVI (.hdr + .img, float32, BSQ); atomic writes.

Every writer here writes to a temporary name in the target folder and renames it into place,
so an interrupted run never leaves a file that looks complete.  For an ENVI cube the binary
``.img`` is renamed first and the ``.hdr`` last: a header on disk means the cube is whole.
Files and folders written this way get the permissions the process umask gives (as ``open``
would), not the owner-only ones of ``mkstemp``/``mkdtemp``, so collaborators on a shared file
system can read results.

Reading checks an ENVI header before a byte of data is allocated: the required fields, their
values (data type, interleave, byte order, header offset) and that the ``.img`` holds exactly
``header offset + lines × samples × bands × bytes per value`` bytes.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from hmifbench.cube import Cube
from hmifbench.errors import InputError


def process_umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc``)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)           # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(mask)
    return mask


def _apply_umask(path, directory: bool = False) -> None:
    os.chmod(path, (0o777 if directory else 0o666) & ~process_umask())


@contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    The file gets the mode ``open`` would give it (0666 less the umask). On an exception the
    temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        _apply_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path, suffix=".part"):
    """Yield a temporary folder beside ``path``; it replaces ``path`` when the block succeeds.

    The folder gets the mode ``mkdir`` would give it (0777 less the umask). On an exception
    the temporary folder is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent))
    try:
        _apply_umask(tmp, directory=True)
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
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


def read_truth(pair_dir) -> dict:
    """A pair folder's ``truth.json``, with the keys every stage relies on checked.

    Raises
    ------
    InputError
        The file is missing or not JSON, or ``scale`` is missing or not a positive integer.
    """
    path = Path(pair_dir) / "truth.json"
    truth = read_json(path)
    if not isinstance(truth, dict):
        raise InputError(f"{path}: must hold a JSON object, got {type(truth).__name__}")
    if "scale" not in truth:
        raise InputError(f"{path}: key 'scale' is missing (the integer size ratio between the "
                         "HR-MSI and the LR-HSI)")
    scale = truth["scale"]
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise InputError(f"{path}: key 'scale' must be a positive integer, got {scale!r}")
    return truth


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
    with atomic_path(hdr, suffix=".hdr") as tmp_hdr:
        tmp_img = tmp_hdr.with_suffix(".img")    # spectral names the data file after the header
        try:
            envi.save_image(str(tmp_hdr), cube.data, dtype=np.float32, interleave="bsq",
                            ext=".img", byteorder=0, metadata=meta, force=True)
            _apply_umask(tmp_img)
            os.replace(tmp_img, img)             # the data first; the header (on exit) last
        finally:
            tmp_img.unlink(missing_ok=True)
    return hdr


#: ENVI data type codes read here (6 and 9, complex, are not)
ENVI_DTYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8", 15: "u8"}
#: the axis order of each interleave on disk, as (rows, cols, bands) axes
_LAYOUT = {"bsq": ("bands", "lines", "samples"), "bil": ("lines", "bands", "samples"),
           "bip": ("lines", "samples", "bands")}
_DATA_EXTENSIONS = (".img", ".dat", ".raw", ".bsq", ".bil", ".bip", "")


def parse_envi_header(text: str, where) -> dict:
    """Parse the text of an ENVI header into ``{lower-case key: str or list of str}``.

    ``{...}`` values may span lines and become lists (split on commas), except
    ``description``, which stays one string; ``;`` starts a comment line.

    Raises
    ------
    InputError
        If the text does not start with ``ENVI`` or a ``{`` is never closed.
    """
    lines = text.splitlines()
    if not lines or not lines[0].strip().startswith("ENVI"):
        raise InputError(f"{where}: not an ENVI header (the first line must be 'ENVI')")
    fields: dict = {}
    i = 1
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.lstrip().startswith(";") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, value = " ".join(key.lower().split()), value.strip()
        if value.startswith("{"):
            parts = [value]
            while not parts[-1].rstrip().endswith("}"):
                if i >= len(lines):
                    raise InputError(f"{where}: field {key!r}: '{{' is never closed")
                parts.append(lines[i].strip())
                i += 1
            body = "\n".join(parts).strip()[1:-1]
            fields[key] = body.strip() if key == "description" else [v.strip() for v in body.split(",")]
        else:
            fields[key] = value
    return fields


def _int_field(fields: dict, key: str, where, *, default=None, minimum: int = 1) -> int:
    value = fields.get(key, default)
    if value is None:
        raise InputError(f"{where}: field {key!r} is missing")
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    if not isinstance(value, (str, int)) or not re.fullmatch(r"\s*\+?\d+\s*", str(value)):
        raise InputError(f"{where}: field {key!r} must be {what}, got {value!r}")
    number = int(value)
    if number < minimum:
        raise InputError(f"{where}: field {key!r} must be {what}, got {value!r}")
    return number


def envi_layout(fields: dict, where) -> dict:
    """Check an ENVI header's layout fields; return samples, lines, bands, dtype, interleave, offset.

    Raises
    ------
    InputError
        Naming the header and the field that is missing or has a value this reader rejects.
    """
    layout = {k: _int_field(fields, k, where) for k in ("samples", "lines", "bands")}
    code = _int_field(fields, "data type", where)
    if code in (6, 9):
        raise InputError(f"{where}: field 'data type' = {code} is complex data, which hmifbench "
                         "does not read")
    if code not in ENVI_DTYPES:
        raise InputError(f"{where}: field 'data type' must be one of {sorted(ENVI_DTYPES)}, got {code}")
    order = _int_field(fields, "byte order", where, default="0", minimum=0)
    if order not in (0, 1):
        raise InputError(f"{where}: field 'byte order' must be 0 (little-endian) or 1 (big-endian), "
                         f"got {order}")
    interleave = fields.get("interleave")
    if interleave is None:
        raise InputError(f"{where}: field 'interleave' is missing")
    if not isinstance(interleave, str) or interleave.strip().lower() not in _LAYOUT:
        raise InputError(f"{where}: field 'interleave' must be bsq, bil or bip, got {interleave!r}")
    layout.update(dtype=np.dtype(("<" if order == 0 else ">") + ENVI_DTYPES[code]), code=code,
                  interleave=interleave.strip().lower(),
                  offset=_int_field(fields, "header offset", where, default="0", minimum=0))
    return layout


def _data_file(hdr: Path, interleave: str) -> Path:
    for ext in _DATA_EXTENSIONS + (f".{interleave}",):
        for candidate in {ext, ext.upper()}:
            path = hdr.with_suffix(candidate)
            if path != hdr and path.is_file():
                return path
    raise InputError(f"{hdr}: no data file beside the header (looked for {hdr.stem}.img, .dat, .raw, ...)")


def _wavelengths(fields: dict, bands: int, where) -> np.ndarray | None:
    wl = fields.get("wavelength")
    if wl is None:
        return None
    values = wl if isinstance(wl, list) else [wl]
    try:
        wavelengths = np.asarray([float(w) for w in values])
    except ValueError:
        raise InputError(f"{where}: field 'wavelength' must be a list of numbers, got {wl!r}") from None
    units = str(fields.get("wavelength units", "nm")).strip().lower()
    if units in ("micrometers", "um", "µm", "microns"):
        wavelengths = wavelengths * 1000.0
    return wavelengths


def read_cube(path) -> Cube:
    """Read an ENVI cube (``.hdr`` path) into a :class:`Cube` with its wavelengths.

    Any real ENVI data type, interleave (BSQ, BIL, BIP), byte order and header offset is read;
    values become float32 (divided by ``reflectance scale factor`` when the header gives one).

    Raises
    ------
    InputError
        If the header is missing or malformed, a layout field is missing or invalid, the data
        file's size differs from what the header declares, or the cube holds NaN or infinite
        values. The message names the file and the field.
    """
    hdr = _hdr_path(path)
    if not hdr.exists():
        raise InputError(f"{hdr}: cube header not found")
    try:
        text = hdr.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InputError(f"{hdr}: not an ENVI header (binary, not text)") from None
    except OSError as err:
        raise InputError(f"{hdr}: cannot read the header ({err.strerror})") from None
    fields = parse_envi_header(text, hdr)
    lay = envi_layout(fields, hdr)
    img = _data_file(hdr, lay["interleave"])
    count = lay["samples"] * lay["lines"] * lay["bands"]
    expected = lay["offset"] + count * lay["dtype"].itemsize
    size = img.stat().st_size
    if size != expected:                        # checked before anything is allocated
        raise InputError(
            f"{img}: {size} bytes, but {hdr.name} declares {expected} (header offset {lay['offset']} + "
            f"{lay['lines']} lines x {lay['samples']} samples x {lay['bands']} bands x "
            f"{lay['dtype'].itemsize} bytes of data type {lay['code']}): the header's size or "
            "data type does not describe this file")
    wavelengths = _wavelengths(fields, lay["bands"], hdr)
    try:
        raw = np.fromfile(img, dtype=lay["dtype"], count=count, offset=lay["offset"])
    except OSError as err:
        raise InputError(f"{img}: cannot read the data ({err})") from None
    axes = _LAYOUT[lay["interleave"]]
    stored = raw.reshape(tuple(lay[a] for a in axes))
    data = np.ascontiguousarray(stored.transpose([axes.index(a) for a in ("lines", "samples", "bands")]),
                                dtype=np.float32)
    scale = fields.get("reflectance scale factor")
    if scale is not None:
        try:
            factor = float(scale)
        except (TypeError, ValueError):
            factor = float("nan")
        if not (math.isfinite(factor) and factor > 0):
            raise InputError(f"{hdr}: field 'reflectance scale factor' must be a positive number, got {scale!r}")
        data /= np.float32(factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        finite = bool(np.isfinite(data).all())
    if not finite:
        raise InputError(f"{hdr}: cube contains NaN or infinite values")
    try:
        return Cube(data, wavelengths)
    except InputError as err:
        raise InputError(f"{hdr}: {err}") from None
