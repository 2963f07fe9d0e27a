"""Input validation shared by the metrics: every failure is an InputError naming the problem."""

from __future__ import annotations

import math

import numpy as np

from hmifbench.cube import Cube
from hmifbench.errors import InputError


def _as_float_array(x, name: str) -> np.ndarray:
    data = x.data if isinstance(x, Cube) else np.asarray(x)
    if data.ndim != 3:
        raise InputError(f"{name}: expected an array of shape (rows, cols, bands), got shape {data.shape}")
    if not (np.issubdtype(data.dtype, np.floating) or np.issubdtype(data.dtype, np.integer)
            or data.dtype == np.bool_):
        raise InputError(f"{name}: expected numbers, got dtype {data.dtype}")
    return data


def _float_dtype(*arrays) -> type:
    # float32 stays float32 (the suite's data type, and the fast path); anything wider or
    # integer (DN data) is computed in float64 so no precision is lost.
    if all(a.dtype in (np.float32, np.float16) for a in arrays):
        return np.float32
    return np.float64


def _check_finite(a: np.ndarray, name: str) -> None:
    if a.dtype.kind != "f":
        return
    # A plain (pairwise, native-precision) sum is finite whenever every element is, unless it
    # overflows; only then, or when it is not finite, do we pay for the exact count.
    with np.errstate(all="ignore"):
        total = float(np.add.reduce(a, axis=None))
    if math.isfinite(total):
        return
    n_nan = int(np.isnan(a).sum())
    n_inf = int(np.isinf(a).sum())
    if n_nan or n_inf:
        raise InputError(f"{name} contains {n_nan} NaN and {n_inf} infinite values")


def check_pair(reference, estimate, crop: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (reference, estimate) pair and return both as float arrays, border-cropped.

    Both must be (rows, cols, bands) of the same shape and finite. The result is float32 when
    both inputs are float32 (or float16), else float64; ``crop`` pixels are removed from every
    border (a view, no copy).
    """
    x = _as_float_array(reference, "reference")
    y = _as_float_array(estimate, "estimate")
    if x.shape != y.shape:
        raise InputError(f"shape mismatch: reference {x.shape} vs estimate {y.shape}")
    dtype = _float_dtype(x, y)
    x = np.asarray(x, dtype=dtype)
    y = np.asarray(y, dtype=dtype)
    _check_finite(x, "reference")
    _check_finite(y, "estimate")
    k = check_crop(crop, x.shape)
    if k:
        x, y = x[k:-k, k:-k], y[k:-k, k:-k]
    if x.size == 0:
        raise InputError(f"empty image: shape {x.shape}")
    return x, y


def check_crop(crop, shape) -> int:
    """Validate a border crop of ``crop`` pixels for an image of ``shape``."""
    if isinstance(crop, bool) or int(crop) != crop or crop < 0:
        raise InputError(f"crop must be a non-negative integer number of pixels, got {crop!r}")
    k = int(crop)
    if 2 * k >= min(shape[0], shape[1]):
        raise InputError(f"crop of {k} pixels per border leaves nothing of a {shape[0]}×{shape[1]} image")
    return k


def check_scale(scale) -> float:
    """The resolution ratio s = HR/LR: a finite number > 0 (normally an integer > 1)."""
    try:
        s = float(scale)
    except (TypeError, ValueError):
        raise InputError(f"scale must be a number (the HR/LR resolution ratio), got {scale!r}") from None
    if not math.isfinite(s) or s <= 0:
        raise InputError(f"scale must be a positive resolution ratio HR/LR (e.g. 4 or 8), got {scale!r}")
    return s


def check_data_range(data_range) -> float:
    """The declared data range L (peak of PSNR, L of SSIM): finite and > 0."""
    try:
        r = float(data_range)
    except (TypeError, ValueError):
        raise InputError(f"data_range must be a number, got {data_range!r}") from None
    if not math.isfinite(r) or r <= 0:
        raise InputError(f"data_range must be finite and > 0, got {data_range!r}")
    return r
