"""The Harvard real-world hyperspectral images (Chakrabarti & Zickler, CVPR 2011).

1040 x 1392 pixels, 31 bands from 420 to 720 nm in 10 nm steps, MATLAB v5 files. Record
(homepage, licence, citation): ``datasets/registry.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hmifbench.cube import Cube
from hmifbench.datasets.options import CropNormaliseOptions, crop_array, normalisation_factor
from hmifbench.datasets.real import RealDataset, find_files, finite, read_info
from hmifbench.errors import InputError


class Harvard(RealDataset):
    """Harvard (Chakrabarti & Zickler, CVPR 2011): 1040×1392×31, 420–720 nm in 10 nm steps.

    Files: ``**/<scene>.mat`` (MATLAB v5), key ``ref`` (float, not normalised), ``lbl`` (mask
    of unreliable regions, not applied). Normalisation (option ``normalise``, default ``max``):
    each image divided by its own global maximum, as most HMIF code does; the factor is
    recorded in ``info["scale_factor"]`` so the original values can be restored.

    Splits (need ``root``; file names were not verifiable offline): ``daylight`` (files under
    ``CZ_hsdb``), ``indoor`` (under ``CZ_hsdbi``), ``test`` = every 5th daylight image in sorted
    order (10 of 50), ``train`` = the other daylight images.
    Options: ``crop``, ``position``, ``normalise``
    (:class:`~hmifbench.datasets.options.CropNormaliseOptions`).
    """

    name = "harvard"
    splits_from_files = True  # scene lists are read from the downloaded files
    Options = CropNormaliseOptions
    bands_nm = np.arange(420.0, 721.0, 10.0)

    def splits(self, root=None):
        if root is None or not Path(root).is_dir():
            return {}
        files = find_files(root, "*.mat", "harvard", self._hint())
        day = sorted(p.stem for p in files if "CZ_hsdb" in p.parts)
        indoor = sorted(p.stem for p in files if "CZ_hsdbi" in p.parts)
        return {"daylight": day, "indoor": indoor, "test": day[::5],
                "train": [s for i, s in enumerate(day) if i % 5], "all": sorted(day + indoor)}

    def read(self, scene, root=None, **options):
        opts = self.parse_options(options)
        import scipy.io

        path = self._scene_file(root, scene)
        try:
            mat = scipy.io.loadmat(path, variable_names=("ref", "lbl"))
        except Exception as err:  # scipy raises ValueError, MatReadError, NotImplementedError (v7.3) …
            raise InputError(f"{path}: cannot read as a MATLAB v5 file ({err})") from None
        if "ref" not in mat:
            raise InputError(f"{path}: no variable 'ref' (found {sorted(k for k in mat if not k.startswith('__'))})")
        ref = np.asarray(mat["ref"])
        if ref.ndim != 3 or ref.shape[2] != 31:
            raise InputError(f"{path}: 'ref' must be rows x cols x 31, got shape {ref.shape}")
        if not np.issubdtype(ref.dtype, np.number):
            raise InputError(f"{path}: 'ref' has dtype {ref.dtype}")
        ref = finite(ref.astype(np.float64), path)
        factor, how = normalisation_factor(ref, opts.normalise, str(path))
        x, window = crop_array(ref / factor, opts.crop, opts.position)
        info = read_info("harvard", scene, path, root, normalisation=how, scale_factor=factor,
                         crop=window, mask_lbl="present, not applied" if "lbl" in mat else "absent")
        return Cube(np.ascontiguousarray(x, dtype=np.float32), self.bands_nm), info
