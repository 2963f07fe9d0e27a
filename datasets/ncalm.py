"""The 2018 IEEE GRSS Data Fusion Contest data over the University of Houston ("NCALM").

The CASI hyperspectral mosaic (48 bands, 380–1050 nm, 1 m) and the very-high-resolution RGB
tiles (5 cm) flown by the National Center for Airborne Laser Mapping. Record (homepage, terms,
licence, citation): ``datasets/registry.yaml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmifbench.cube import Cube
from hmifbench.datasets.options import at_least, fraction, normalisation_factor, option, parse_normalise
from hmifbench.datasets.real import (RealDataset, find_files, finite, open_raster, raster_wavelengths,
                                     read_info)
from hmifbench.errors import InputError

#: DFC2018 CASI band centres (nm) of the 48 spectral bands of 20170218_UH_CASI_S4_NAD83.pix, as
#: listed by songyz2019/rs-fusion-datasets (Apache-2.0), core/_fetch_houston2018.py; used when
#: the file itself carries no wavelengths. Not verified against the file here.
CASI_WAVELENGTHS = np.array([
    374.4, 388.7, 403.1, 417.4, 431.7, 446.1, 460.4, 474.7, 489.0, 503.4, 517.7, 532.0,
    546.3, 560.6, 574.9, 589.2, 603.6, 617.9, 632.2, 646.5, 660.8, 675.1, 689.4, 703.7,
    718.0, 732.3, 746.6, 760.9, 775.2, 789.5, 803.8, 818.1, 832.4, 846.7, 861.1, 875.4,
    889.7, 904.0, 918.3, 932.6, 946.9, 961.2, 975.5, 989.8, 1004.2, 1018.5, 1032.8, 1047.1])

_TILE = re.compile(r"^r(\d+)c(\d+)$")


@dataclass(frozen=True)
class NCALMOptions:
    """The options of :meth:`NCALM.read`."""

    size: int = option(256, "side of an r<ROW>c<COL> window, HSI pixels", at_least(1))
    normalise: str | float = option(
        "max", "max (divide by the window's maximum), none, or a divisor", parse_normalise)
    max_nodata: float = option(0.0, "largest allowed fraction of no-data pixels in the window", fraction)
    hsi_file: str | None = option(None, "the CASI file, relative to the dataset folder (default: found)")


@dataclass(frozen=True)
class NCALMPairOptions(NCALMOptions):
    """The options of :meth:`NCALM.pair`: those of :meth:`NCALM.read` plus ``scale``."""

    scale: int = option(4, "HR-MSI pixels per LR-HSI pixel side", at_least(1))


class NCALM(RealDataset):
    """"NCALM": the 2018 IEEE GRSS Data Fusion Contest data over the University of Houston.

    The HSI is the ITRES CASI-1500 mosaic ``20170218_UH_CASI_S4_NAD83.pix`` (PCIDSK, read with
    rasterio): 48 spectral bands, 380–1050 nm, 1 m GSD (the file holds two further non-spectral
    bands, dropped). The VHR RGB (5 cm, GeoTIFF tiles under a folder named "...RGB...") forms a
    *real* LR-HSI / HR-MSI pair: see :meth:`pair`.

    Scenes: ``full`` or a window ``r<ROW>c<COL>`` (top-left HSI pixel) of ``size`` x ``size``
    pixels. Options: :class:`NCALMOptions` (``size``, ``normalise``, ``max_nodata``,
    ``hsi_file``); :meth:`pair` also takes ``scale`` (:class:`NCALMPairOptions`). Split
    ``grid256`` lists the 256-pixel grid of a 1202 x 4172 mosaic (the size rs-fusion-datasets
    reports; unverified); :func:`ncalm_tiles` lists the windows that are actually free of
    no-data once the file is there. The download needs ``--accept-terms ncalm``.
    """

    name = "ncalm"
    Options = NCALMOptions
    PairOptions = NCALMPairOptions
    bands_nm = CASI_WAVELENGTHS
    n_bands = 48
    hint = "run `hmifbench download ncalm --accept-terms ncalm` first"

    def splits(self, root=None):
        rows, cols, size = 1202, 4172, 256
        if root is not None:
            try:
                rows, cols = self._shape(Path(root))
            except InputError:
                pass
        return {"grid256": [f"r{r}c{c}" for r in range(0, rows - size + 1, size)
                            for c in range(0, cols - size + 1, size)]}

    def hsi_path(self, root, hsi_file=None) -> Path:
        if hsi_file:
            path = Path(root) / hsi_file
            if not path.is_file():
                raise InputError(f"ncalm: {path} not found")
            return path
        hits = find_files(root, "*.pix", "ncalm", self._hint())
        casi = [p for p in hits if "casi" in p.name.lower()] or hits
        if not casi:
            raise InputError(f"ncalm: no CASI .pix file under {root}; {self._hint()}")
        return casi[0]

    def _shape(self, root):
        import rasterio

        with rasterio.open(self.hsi_path(root)) as ds:
            return ds.height, ds.width

    def window(self, scene, shape, size=256) -> tuple[int, int, int, int]:
        if scene == "full":
            return 0, 0, int(shape[0]), int(shape[1])
        m = _TILE.match(scene)
        if not m:
            raise InputError(f"ncalm scenes are 'full' or 'r<ROW>c<COL>' (e.g. r0c512), got {scene!r}")
        r0, c0, size = int(m.group(1)), int(m.group(2)), int(size)
        if r0 + size > shape[0] or c0 + size > shape[1]:
            raise InputError(f"ncalm: window {scene} of {size} px does not fit the {shape[0]}x{shape[1]} HSI")
        return r0, c0, size, size

    def read(self, scene, root=None, **options):
        opts = self.parse_options(options)
        from rasterio.windows import Window

        path = self.hsi_path(root, opts.hsi_file)
        with open_raster(path) as ds:
            if ds.count < self.n_bands:
                raise InputError(f"{path}: {ds.count} bands, expected at least {self.n_bands}")
            r0, c0, h, w = self.window(scene, (ds.height, ds.width), opts.size)
            data = ds.read(list(range(1, self.n_bands + 1)), window=Window(c0, r0, w, h))
            wl, wl_from = raster_wavelengths(ds, self.n_bands)
            nodata = ds.nodata
            transform = ds.window_transform(Window(c0, r0, w, h))
            crs = ds.crs
        x = np.moveaxis(data, 0, -1).astype(np.float64)
        x = finite(x, path)
        invalid = np.all(x == (nodata if nodata is not None else 0), axis=2)
        frac = float(invalid.mean())
        if frac > opts.max_nodata:
            raise InputError(f"{path}: window {scene} ({h}x{w}) has {100 * frac:.1f} % no-data pixels "
                             f"(max_nodata={opts.max_nodata}); pick another window (see ncalm_tiles)")
        factor, how = normalisation_factor(x, opts.normalise, str(path))
        if wl is None:
            wl, wl_from = self.bands_nm, "CASI band centres listed by rs-fusion-datasets (file has none)"
        info = read_info("ncalm", scene, path, root, window={"row": r0, "col": c0, "rows": h, "cols": w},
                         normalisation=how + (" (of the window)" if opts.normalise == "max" else ""),
                         scale_factor=factor, nodata_fraction=frac, wavelengths_from=wl_from,
                         crs=str(crs), transform=list(transform)[:6])
        return Cube(np.ascontiguousarray(x / factor, dtype=np.float32), wl), info

    def rgb_tiles(self, root) -> list[Path]:
        tiles = [p for p in find_files(root, "*.tif", "ncalm", self._hint())
                 if any("rgb" in part.lower() for part in p.relative_to(root).parts[:-1])]
        if not tiles:
            raise InputError(f"ncalm: no VHR RGB GeoTIFFs under {root} (looked for *.tif in a folder "
                             "whose name contains 'RGB')")
        return tiles

    def pair(self, scene, root=None, **options) -> tuple[Cube, Cube, int]:
        """The real pair of ``scene``: (LR-HSI = CASI window, HR-MSI = VHR RGB, scale).

        The RGB tiles are mosaicked and resampled (pixel-area average, the right filter for
        going from 5 cm to coarser) onto the HSI window's own grid refined ``scale`` times, via
        the two rasters' georeferencing; so HR pixel (s·i + a, s·j + b) lies inside LR pixel
        (i, j). RGB counts are divided by 255 (8-bit) or by their maximum (otherwise).
        """
        scale = self.parse_options(options, pair=True).scale
        lr, info = self.read(scene, root, **{k: v for k, v in options.items() if k != "scale"})
        hr = self._rgb_on_grid(root, info, scale)
        return lr, hr, scale

    def _rgb_on_grid(self, root, info, scale):
        import rasterio
        from affine import Affine
        from rasterio.warp import Resampling, reproject

        if scale < 1:
            raise InputError(f"scale must be >= 1, got {scale}")
        h, w = info["window"]["rows"] * scale, info["window"]["cols"] * scale
        dst_transform = Affine(*info["transform"]) @ Affine.scale(1.0 / scale)
        out = np.zeros((3, h, w), dtype=np.float64)
        filled = np.zeros((h, w), dtype=bool)
        dtype = None
        for tile in self.rgb_tiles(root):
            with rasterio.open(tile) as src:
                if src.count < 3:
                    raise InputError(f"{tile}: {src.count} bands, expected 3 (RGB)")
                dtype = src.dtypes[0]
                part = np.full((3, h, w), np.nan)
                for b in range(3):
                    reproject(rasterio.band(src, b + 1), part[b], dst_transform=dst_transform,
                              dst_crs=info["crs"], dst_nodata=np.nan, resampling=Resampling.average)
            ok = np.all(np.isfinite(part), axis=0) & ~filled
            out[:, ok] = part[:, ok]
            filled |= ok
        if not filled.all():
            raise InputError(f"ncalm: the RGB tiles cover only {100 * filled.mean():.1f} % of window "
                             f"{info['scene']} at x{scale}")
        divisor = 255.0 if dtype == "uint8" else float(out.max())
        return Cube(np.moveaxis(out / divisor, 0, -1).astype(np.float32))


def ncalm_tiles(root, size: int = 256, max_nodata: float = 0.0, hsi_file=None) -> list[str]:
    """The ``r<ROW>c<COL>`` windows of a ``size`` grid with at most ``max_nodata`` no-data pixels.

    Run once after the first download to pin the NCALM scene list in the config.
    """
    import rasterio

    ds_obj = NCALM()
    path = ds_obj.hsi_path(Path(root), hsi_file)
    with rasterio.open(path) as ds:
        nodata = ds.nodata if ds.nodata is not None else 0
        invalid = None
        for b in range(1, ds_obj.n_bands + 1):
            band_invalid = ds.read(b) == nodata
            invalid = band_invalid if invalid is None else invalid & band_invalid
        rows, cols = ds.height, ds.width
    out = []
    for r in range(0, rows - size + 1, size):
        for c in range(0, cols - size + 1, size):
            if invalid[r:r + size, c:c + size].mean() <= max_nodata:
                out.append(f"r{r}c{c}")
    return out
