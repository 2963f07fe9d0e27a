"""``files``: a real pair the user brings — an HS image and an MS or PAN image as files.

No reader to write: for each scene NAME, put ``NAME_HS.<ext>`` and ``NAME_MS.<ext>`` (or
``NAME_PAN.<ext>``) in the dataset folder (``<data root>/files``, or the ``folder`` option),
as ENVI (``.hdr`` beside its data file) or GeoTIFF (``.tif``/``.tiff``). Both images must
cover the same ground, the MS/PAN grid an integer multiple (the scale) of the HS one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from hmifbench.cube import Cube
from hmifbench.datasets.options import (CropNormaliseOptions, at_least, crop_array,
                                        normalisation_factor, option)
from hmifbench.datasets.real import (RealDataset, finite, open_raster, raster_wavelengths,
                                     read_info)
from hmifbench.errors import InputError

#: File name endings read, in the order they are looked for.
EXTENSIONS = (".hdr", ".tif", ".tiff")
HS_SUFFIX, MS_SUFFIXES = "HS", ("MS", "PAN")


def read_image(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(rows, cols, bands) float64 values and band centres (nm, or None) of an ENVI or GeoTIFF
    file; :class:`InputError` naming the file when it cannot be read."""
    if path.suffix.lower() == ".hdr":
        from hmifbench.io import read_cube

        cube = read_cube(path)
        return np.asarray(cube.data, dtype=np.float64), cube.wavelengths
    with open_raster(path) as ds:
        data = np.moveaxis(ds.read(), 0, -1).astype(np.float64)
        wavelengths, _ = raster_wavelengths(ds, ds.count)
    return data, wavelengths


def _wavelengths(value):
    if value is None:
        return
    if isinstance(value, str):
        if not Path(value).is_file():
            raise InputError(f"wavelengths file {value} does not exist")
        return
    if len(value) < 1 or any(not np.isfinite(v) or v <= 0 for v in value):
        raise InputError(f"wavelengths must be positive numbers (nm), got {value!r}")


@dataclasses.dataclass(frozen=True)
class FilesOptions(CropNormaliseOptions):
    """Options of the ``files`` dataset (``crop``/``position`` in HS pixels; ``normalise``
    applies to each image separately: their radiometric scales need not match)."""

    folder: str | None = option(None, "folder holding NAME_HS.* and NAME_MS.*/NAME_PAN.* "
                                      "(default: the dataset folder under the data root)")
    wavelengths: list[float] | str | None = option(
        None, "HS band centres in nm, or a text file of them (one per line); default: from "
              "the HS file's metadata", _wavelengths)


@dataclasses.dataclass(frozen=True)
class FilesPairOptions(FilesOptions):
    """:class:`FilesOptions` plus ``scale``."""

    scale: int | None = option(None, "MS/PAN pixels per HS pixel side; default: the ratio of "
                                     "the image sizes (must be an integer)", at_least(1))


class Files(RealDataset):
    """A user's own real pairs: HS + MS/PAN files, ENVI or GeoTIFF (see the module notes).

    :meth:`read` gives the HS image as a cube (to simulate from, like any dataset);
    :meth:`pair` gives (HS, MS/PAN, scale) for the real-pair track (``real_pairs:``), fused
    blind and scored without reference. Scenes: every NAME with both files in the folder
    (split ``all``), or the config's ``scenes``.
    """

    name = "files"
    Options = FilesOptions
    PairOptions = FilesPairOptions
    hint = "put NAME_HS.hdr|tif and NAME_MS.hdr|tif (or NAME_PAN.*) in the dataset folder"
    licence = "the user's own data, under its own terms"

    def splits(self, root=None):
        if root is None or not Path(root).is_dir():
            return {}
        names = sorted(p.name[:-len(f"_{HS_SUFFIX}{p.suffix}")] for p in Path(root).iterdir()
                       if p.suffix.lower() in EXTENSIONS and p.stem.endswith(f"_{HS_SUFFIX}"))
        return {"all": [n for n in names if self._find(Path(root), n, MS_SUFFIXES, False)]}

    def _folder(self, root, opts) -> Path:
        folder = Path(opts.folder) if opts.folder else (Path(root) if root is not None else None)
        if folder is None or not folder.is_dir():
            raise InputError(f"files: folder {folder} does not exist; {self.hint} "
                             "(or set the option 'folder')")
        return folder

    def _find(self, folder: Path, scene: str, suffixes, required=True) -> Path | None:
        for suffix in suffixes:
            for ext in EXTENSIONS:
                path = folder / f"{scene}_{suffix}{ext}"
                if path.is_file():
                    return path
        if required:
            wanted = " or ".join(f"{scene}_{s}{{{','.join(EXTENSIONS)}}}" for s in suffixes)
            raise InputError(f"files/{scene}: no {wanted} in {folder}")
        return None

    def _hs_wavelengths(self, opts, found, bands, path):
        wl = opts.wavelengths
        if isinstance(wl, str):
            try:
                wl = np.loadtxt(wl, dtype=np.float64, ndmin=1)
            except ValueError as err:
                raise InputError(f"wavelengths file {opts.wavelengths}: {err}") from None
        if wl is None:
            return found
        wl = np.asarray(wl, dtype=np.float64)
        if wl.size != bands:
            raise InputError(f"{path}: {bands} bands but {wl.size} wavelengths given")
        return wl

    def read(self, scene, root=None, **options):
        opts = self.parse_options(options)
        folder = self._folder(root, opts)
        path = self._find(folder, scene, (HS_SUFFIX,))
        data, found = read_image(path)
        data = finite(data, path)
        wl = self._hs_wavelengths(opts, found, data.shape[2], path)
        factor, how = normalisation_factor(data, opts.normalise, str(path))
        x, window = crop_array(data / factor, opts.crop, opts.position)
        info = read_info("files", scene, path, folder, normalisation=how, scale_factor=factor,
                         crop=window, wavelengths_from="option" if opts.wavelengths is not None
                         else ("file metadata" if found is not None else "none"))
        return Cube(np.ascontiguousarray(x, dtype=np.float32), wl), info

    def pair(self, scene, root=None, **options) -> tuple[Cube, Cube, int]:
        """(HS cube, MS/PAN cube, scale) of ``scene``; ``crop``/``position`` in HS pixels."""
        opts = self.parse_options(options, pair=True)
        hs, info = self.read(scene, root, **{k: v for k, v in options.items() if k != "scale"})
        folder = self._folder(root, opts)
        ms_path = self._find(folder, scene, MS_SUFFIXES)
        ms, _ = read_image(ms_path)
        ms = finite(ms, ms_path)
        full = info["crop"]["of"] if info["crop"] else list(hs.shape[:2])
        scale = opts.scale
        if scale is None:
            ratios = {ms.shape[0] / full[0], ms.shape[1] / full[1]}
            if len(ratios) != 1 or not float(next(iter(ratios))).is_integer():
                raise InputError(f"files/{scene}: MS/PAN {ms.shape[0]}x{ms.shape[1]} is not an "
                                 f"integer multiple of HS {full[0]}x{full[1]}; set 'scale'")
            scale = int(next(iter(ratios)))
        if (ms.shape[0], ms.shape[1]) != (full[0] * scale, full[1] * scale):
            raise InputError(f"files/{scene}: MS/PAN is {ms.shape[0]}x{ms.shape[1]}, expected "
                             f"{full[0] * scale}x{full[1] * scale} (HS {full[0]}x{full[1]} × {scale})")
        factor, _ = normalisation_factor(ms, opts.normalise, str(ms_path))
        win = info["crop"] or {"row": 0, "col": 0, "rows": hs.shape[0], "cols": hs.shape[1]}
        r0, c0 = win["row"] * scale, win["col"] * scale
        ms = ms[r0:r0 + win["rows"] * scale, c0:c0 + win["cols"] * scale] / factor
        return hs, Cube(np.ascontiguousarray(ms, dtype=np.float32)), scale
