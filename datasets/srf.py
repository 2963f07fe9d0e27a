"""Spectral response tables of MSI sensors, resampled to an HSI's band centres.

Tables live in ``datasets/data/srf/*.csv`` with their source in the file header. A table is
sampled at the HSI's band centres by linear interpolation, and each row is renormalised to sum
1 (see :func:`hmifbench.observation.resample_srf`); the fraction of each curve's area that the
HSI's range covers is returned so that a truncated band is visible in the records (and logged:
a warning when a band keeps less than 90 % of its area).

Tables
------
==================  ==============================================================================
nikon-d700          "Table B": the 3×31 integer table of ``create_F()`` / MossFuse ``resp.mat``
nikon-d700-a        "Table A": the 3×31 decimal table (magamig/hif-benchmarking, luxpy)
nikon-d700-1nm      measured D700 curves at 1 nm (377–948 nm)
nikon-5100          Nikon D5100 measured by NPL, 380–780 nm at 5 nm (colour-science)
ikonos              IKONOS blue, green, red, NIR, 350–1035 nm at 5 nm
sentinel2a-10m      Sentinel-2A MSI B2, B3, B4, B8 at 1 nm (pyrsr / ESA)
sentinel2a-vnir     Sentinel-2A MSI B1–B8, B8A, B9 at 1 nm (pyrsr / ESA)
landsat8-oli        Landsat-8 OLI B1–B5 at 1 nm (pyrsr / NASA)
==================  ==============================================================================
"""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib import resources

import numpy as np

from hmifbench.errors import InputError
from hmifbench.observation import resample_srf

log = logging.getLogger(__name__)

#: name -> (csv file, description)
SRF_TABLES = {
    "nikon-d700": ("nikon_d700_create_f.csv",
                   "Nikon D700 as the 3x31 integer table of HMIF code (create_F; MossFuse resp.mat)"),
    "nikon-d700-a": ("nikon_d700_table_a.csv",
                     "Nikon D700 as the 3x31 decimal table of HMIF code (Table A; hif-benchmarking, luxpy)"),
    "nikon-d700-1nm": ("nikon_d700_1nm.csv",
                       "Nikon D700 measured sensitivity, 1 nm (Jiang et al. WACV 2013 via hif-benchmarking)"),
    "nikon-5100": ("nikon_5100_npl.csv",
                   "Nikon D5100 measured by NPL (Darrodi et al. 2015), 5 nm, via colour-science"),
    "ikonos": ("ikonos.csv", "IKONOS multispectral bands blue, green, red, NIR (Space Imaging RSR)"),
    "sentinel2a-10m": ("sentinel2a_msi.csv", "Sentinel-2A MSI 10 m bands B2, B3, B4, B8 (ESA via pyrsr)"),
    "sentinel2a-vnir": ("sentinel2a_msi.csv", "Sentinel-2A MSI VNIR bands B1-B9 incl. B8A (ESA via pyrsr)"),
    "landsat8-oli": ("landsat8_oli.csv", "Landsat-8 OLI bands B1-B5 (NASA via pyrsr)"),
}

#: name -> the columns of its CSV that form the table (all columns when absent)
SRF_BANDS = {
    "sentinel2a-10m": ("B2", "B3", "B4", "B8"),
}

#: a band that keeps less than this fraction of its area inside the HSI's range is logged as a warning
COVERAGE_WARNING = 0.9


@lru_cache(maxsize=None)
def _read_csv(filename: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    text = resources.files("hmifbench.datasets").joinpath("data", "srf", filename).read_text()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    header = lines[0].split(",")
    values = np.array([[float(v) for v in ln.split(",")] for ln in lines[1:]])
    return values[:, 0], values[:, 1:], tuple(header[1:])


def srf_table(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The raw table ``(wavelengths_nm (n,), response (n, b), band_names)`` of a named SRF."""
    try:
        filename, _ = SRF_TABLES[name]
    except KeyError:
        raise InputError(f"unknown SRF {name!r}; known: {sorted(SRF_TABLES)}") from None
    nm, response, names = _read_csv(filename)
    if name in SRF_BANDS:
        cols = [names.index(b) for b in SRF_BANDS[name]]
        return nm, response[:, cols], tuple(names[c] for c in cols)
    return nm, response, names


def srf_for(name: str, wavelengths, shift_nm: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The named SRF as a (b × B) matrix for HSI bands centred at ``wavelengths`` (nm).

    ``shift_nm`` moves every curve of the table by that many nm (positive: towards longer
    wavelengths) before it is sampled: the table's wavelengths μ become μ + shift_nm. It models
    a sensor whose bands sit off their published centres (the ``srf_shift_nm`` protocol field).

    Returns ``(srf, covered)``; see :func:`hmifbench.observation.resample_srf`. The covered
    fraction of every band is logged (a warning below :data:`COVERAGE_WARNING`).

    Raises
    ------
    InputError
        If the cube has no wavelengths, or a band of the table has no response at all inside
        the HSI's range (e.g. Sentinel-2 B8 at 833 nm for a 400–700 nm cube).
    """
    if wavelengths is None:
        raise InputError(f"SRF {name!r} needs the HSI's wavelengths, and the cube has none")
    nm, response, bands = srf_table(name)
    shift = float(shift_nm)
    if not np.isfinite(shift):
        raise InputError(f"SRF {name!r}: the shift must be a finite number of nm, got {shift_nm!r}")
    nm = nm + shift
    wl = np.asarray(wavelengths, dtype=np.float64)
    try:
        srf, covered = resample_srf(nm, response, wl)
    except InputError:
        tgt_sampled = [np.interp(wl, nm, response[:, j], left=0.0, right=0.0).sum()
                       for j in range(response.shape[1])]
        empty = [b for b, s in zip(bands, tgt_sampled) if s <= 0]
        moved = f" shifted by {shift:g} nm" if shift else ""
        raise InputError(f"SRF {name!r}{moved}: band(s) {empty} have no response inside the HSI's range "
                         f"{wl.min():g}-{wl.max():g} nm; choose another SRF") from None
    for band, frac in zip(bands, covered):
        level = logging.WARNING if frac < COVERAGE_WARNING else logging.DEBUG
        log.log(level, "SRF %s band %s: %.1f %% of its area inside %g-%g nm",
                name, band, 100 * frac, wl.min(), wl.max())
    return srf, covered
