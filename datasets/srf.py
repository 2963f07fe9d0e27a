"""Spectral response tables of MSI sensors, resampled to an HSI's band centres.

Tables live in ``datasets/data/srf/*.csv`` with their source in the file header. A table is
sampled at the HSI's band centres by linear interpolation, and each row is renormalised to sum
1 (see :func:`hmifbench.observation.resample_srf`); the fraction of each curve's area that the
HSI's range covers is returned so that a truncated band is visible in the records.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from hmifbench.errors import InputError
from hmifbench.observation import resample_srf

#: name -> (csv file, description)
SRF_TABLES = {
    "nikon-d700": ("nikon_d700_create_f.csv",
                   "Nikon D700 as the 3x31 integer table of HMIF code (create_F; MossFuse resp.mat)"),
    "nikon-d700-1nm": ("nikon_d700_1nm.csv",
                       "Nikon D700 measured sensitivity, 1 nm (Jiang et al. WACV 2013 via hif-benchmarking)"),
}


@lru_cache(maxsize=None)
def srf_table(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The raw table ``(wavelengths_nm (n,), response (n, b), band_names)`` of a named SRF."""
    try:
        filename, _ = SRF_TABLES[name]
    except KeyError:
        raise InputError(f"unknown SRF {name!r}; known: {sorted(SRF_TABLES)}") from None
    text = resources.files("hmifbench.datasets").joinpath("data", "srf", filename).read_text()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    header = lines[0].split(",")
    values = np.array([[float(v) for v in ln.split(",")] for ln in lines[1:]])
    return values[:, 0], values[:, 1:], tuple(header[1:])


def srf_for(name: str, wavelengths) -> tuple[np.ndarray, np.ndarray]:
    """The named SRF as a (b × B) matrix for HSI bands centred at ``wavelengths`` (nm).

    Returns ``(srf, covered)``; see :func:`hmifbench.observation.resample_srf`.
    """
    if wavelengths is None:
        raise InputError(f"SRF {name!r} needs the HSI's wavelengths, and the cube has none")
    nm, response, _ = srf_table(name)
    return resample_srf(nm, response, wavelengths)
