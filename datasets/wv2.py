"""WorldView-2 multispectral and panchromatic scenes, brought by the user under their own licence.

Record (licence, how to place the files): ``datasets/registry.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hmifbench.cube import Cube
from hmifbench.datasets.options import CropNormaliseOptions, crop_array, normalisation_factor
from hmifbench.datasets.real import (RealDataset, find_files, finite, open_raster, raster_wavelengths,
                                     read_info)
from hmifbench.errors import InputError

#: WorldView-2 nominal band centres (nm): coastal, blue, green, yellow, red, red edge, NIR1,
#: NIR2 (DigitalGlobe WorldView-2 specifications; used when the GeoTIFF has no wavelengths).
WV2_WAVELENGTHS = np.array([427.0, 478.0, 546.0, 608.0, 659.0, 724.0, 831.0, 908.0])


class WV2(RealDataset):
    """WorldView-2 scenes placed by the user (commercial licence; never downloaded).

    For each scene NAME: ``NAME_MS.tif`` (8-band MS, 1.84 m) and ``NAME_PAN.tif`` (0.46 m)
    anywhere under root. :meth:`load` gives the MS image as a cube (wavelengths from the file,
    else :data:`WV2_WAVELENGTHS`); :meth:`pair` gives (MS, PAN, scale) for no-reference scoring.
    MossFuse's own WV-2 data are not published, so this entry fixes our own convention.
    Options (of :meth:`read` and :meth:`pair`): ``crop``, ``position``, ``normalise``
    (:class:`~hmifbench.datasets.options.CropNormaliseOptions`).
    """

    name = "wv2"
    splits_from_files = True  # scene lists are read from the downloaded files
    Options = CropNormaliseOptions
    PairOptions = CropNormaliseOptions
    bands_nm = WV2_WAVELENGTHS
    hint = "place NAME_MS.tif and NAME_PAN.tif by hand and run `hmifbench download wv2 --verify`"

    def splits(self, root=None):
        if root is None or not Path(root).is_dir():
            return {}
        return {"all": sorted(p.name[:-len("_MS.tif")] for p in find_files(root, "*_MS.tif", "wv2", self._hint()))}

    def _path(self, root, scene, suffix) -> Path:
        hits = find_files(root, f"{scene}_{suffix}.tif", f"wv2/{scene}", self._hint())
        if not hits:
            raise InputError(f"wv2: {scene}_{suffix}.tif not found under {root}; {self._hint()}")
        return hits[0]

    def read(self, scene, root=None, **options):
        opts = self.parse_options(options)
        path = self._path(root, scene, "MS")
        with open_raster(path) as ds:
            if ds.count != 8:
                raise InputError(f"{path}: {ds.count} bands, expected 8 (WorldView-2 MS)")
            data = finite(np.moveaxis(ds.read(), 0, -1).astype(np.float64), path)
            wl, wl_from = raster_wavelengths(ds, ds.count)
        factor, how = normalisation_factor(data, opts.normalise, str(path))
        x, window = crop_array(data / factor, opts.crop, opts.position)
        info = read_info("wv2", scene, path, root, normalisation=how, scale_factor=factor, crop=window,
                         wavelengths_from=wl_from or "WorldView-2 nominal band centres")
        return Cube(np.ascontiguousarray(x, dtype=np.float32), wl if wl is not None else self.bands_nm), info

    def pair(self, scene, root=None, **options) -> tuple[Cube, Cube, int]:
        """(MS cube, PAN cube, scale) of ``scene``; ``crop``/``position`` are in MS pixels.

        The scale is the ratio of the pixel sizes and must be an integer; the PAN window is the
        MS window times the scale, so both cover the same ground.
        """
        from rasterio.windows import Window

        opts = self.parse_options(options, pair=True)
        ms, info = self.read(scene, root, **options)
        pan_path = self._path(root, scene, "PAN")
        with open_raster(self._path(root, scene, "MS")) as ds:
            res_ms = abs(ds.transform.a)
        with open_raster(pan_path) as ds:
            ratio = res_ms / abs(ds.transform.a)
            scale = int(round(ratio))
            if abs(ratio - scale) > 1e-3 or scale < 1:
                raise InputError(f"wv2/{scene}: MS/PAN pixel-size ratio {ratio:.4f} is not an integer")
            win = info["crop"] or {"row": 0, "col": 0, "rows": ms.shape[0], "cols": ms.shape[1]}
            r0, c0, h, w = (win["row"] * scale, win["col"] * scale, win["rows"] * scale, win["cols"] * scale)
            if r0 + h > ds.height or c0 + w > ds.width:
                raise InputError(f"{pan_path}: {ds.height}x{ds.width} does not cover {scale} x the MS window")
            pan = finite(ds.read(1, window=Window(c0, r0, w, h)).astype(np.float64), pan_path)
        factor, _ = normalisation_factor(pan, opts.normalise, str(pan_path))
        return ms, Cube((pan / factor)[:, :, None]), scale
