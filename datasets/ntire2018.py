"""The NTIRE 2018 spectral reconstruction challenge data (BGU / ICVL hyperspectral database).

31 bands from 400 to 700 nm in 10 nm steps, MATLAB v7.3 (HDF5) files. Record (homepage,
licence, citation, how to obtain the files): ``datasets/registry.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hmifbench.cube import Cube
from hmifbench.datasets.options import CropNormaliseOptions, crop_array, normalisation_factor
from hmifbench.datasets.real import RealDataset, find_files, finite, read_info
from hmifbench.errors import InputError

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def read_mat73(path: Path, key: str) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """``(variable key, the 'bands' variable or None, all keys)`` of a MATLAB v7.3 file."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            keys = sorted(f.keys())
            if key not in f:
                extra = (" (this looks like NTIRE 2020/2022 ARAD data, a different dataset)"
                         if "cube" in f else "")
                raise InputError(f"{path}: no variable {key!r} (found {keys}){extra}")
            arr = np.asarray(f[key][()])
            bands = np.asarray(f["bands"][()]).ravel() if "bands" in f else None
    except OSError as err:
        raise InputError(f"{path}: cannot read as MATLAB v7.3 / HDF5 ({err})") from None
    return arr, bands, keys


class NTIRE2018(RealDataset):
    """NTIRE 2018 spectral reconstruction data (BGU/ICVL): 31 bands, 400–700 nm in 10 nm steps.

    Files: ``**/<scene>.mat`` (e.g. ``BGU_HS_00001.mat``), MATLAB v7.3 (HDF5) read with h5py,
    key ``rad`` (radiance). HDF5 stores MATLAB's column-major array with reversed axes, so the
    array is transposed (2, 1, 0) back to rows x cols x bands. A ``bands`` variable, when
    present, gives the wavelengths. Normalisation: option ``normalise`` (default ``max``, per
    image; recorded). The files are placed by hand (the challenge copy needs a login).

    Splits (need ``root``): ``train`` (files under a folder whose name contains "Train"),
    ``validate`` (contains "Valid"), ``all``.
    Options: ``crop``, ``position``, ``normalise``
    (:class:`~hmifbench.datasets.options.CropNormaliseOptions`).
    """

    name = "ntire2018"
    splits_from_files = True  # scene lists are read from the downloaded files
    Options = CropNormaliseOptions
    bands_nm = np.arange(400.0, 701.0, 10.0)
    hint = "place the files by hand and run `hmifbench download ntire2018 --verify`"

    def splits(self, root=None):
        if root is None or not Path(root).is_dir():
            return {}
        files = find_files(root, "*.mat", "ntire2018", self._hint())

        def under(word):
            return sorted(p.stem for p in files if any(word in part.lower() for part in p.parts[:-1]))
        return {"train": under("train"), "validate": under("valid"), "all": sorted(p.stem for p in files)}

    def read(self, scene, root=None, **options):
        opts = self.parse_options(options)
        path = self._scene_file(root, scene)
        with open(path, "rb") as fh:
            head = fh.read(520)
        if head[512:520] == _HDF5_SIGNATURE or head[:8] == _HDF5_SIGNATURE:
            raw, bands, _ = read_mat73(path, "rad")
            if raw.ndim != 3:
                raise InputError(f"{path}: 'rad' must be 3-D, got shape {raw.shape}")
            rad = raw.transpose(2, 1, 0)          # HDF5 (bands, cols, rows) -> (rows, cols, bands)
            layout = "MATLAB v7.3 (HDF5), transposed (2, 1, 0)"
        else:
            import scipy.io

            try:
                mat = scipy.io.loadmat(path, variable_names=("rad", "bands"))
            except Exception as err:
                raise InputError(f"{path}: neither MATLAB v7.3 (HDF5) nor readable v5 ({err})") from None
            if "rad" not in mat:
                raise InputError(f"{path}: no variable 'rad'")
            rad, layout = np.asarray(mat["rad"]), "MATLAB v5"
            bands = np.asarray(mat["bands"]).ravel() if "bands" in mat else None
        if rad.ndim != 3 or rad.shape[2] != 31:
            raise InputError(f"{path}: 'rad' must be rows x cols x 31 after reading ({layout}), "
                             f"got shape {rad.shape}")
        wl = self.bands_nm
        if bands is not None:
            if bands.size != 31:
                raise InputError(f"{path}: 'bands' has {bands.size} values for 31 bands")
            wl = bands.astype(np.float64)
        rad = finite(rad.astype(np.float64), path)
        factor, how = normalisation_factor(rad, opts.normalise, str(path))
        x, window = crop_array(rad / factor, opts.crop, opts.position)
        info = read_info("ntire2018", scene, path, root, layout=layout, normalisation=how,
                         scale_factor=factor, crop=window,
                         wavelengths_from="file 'bands'" if bands is not None else "400:10:700 nm")
        return Cube(np.ascontiguousarray(x, dtype=np.float32), wl), info
