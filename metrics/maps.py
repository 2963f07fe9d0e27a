"""Per-pixel error maps, for figures: where in the image a method is wrong."""

from __future__ import annotations

import numpy as np

from hmifbench.metrics._checks import check_pair


def error_maps(reference, estimate, crop: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel RMSE and spectral-angle maps of ``estimate`` against ``reference``.

    For the spectra x_p (reference) and y_p (estimate) at pixel p over B bands:

    * ``rmse_map[p] = sqrt( (1/B) Σ_b (x_p,b − y_p,b)² )``, in data units;
    * ``sam_map[p] = 2·atan2(‖a − b‖, ‖a + b‖)`` · 180/π with a = x_p/‖x_p‖, b = y_p/‖y_p‖,
      in degrees: the angle arccos(⟨x_p, y_p⟩/(‖x_p‖‖y_p‖)) written in the form that
      :func:`hmifbench.metrics.sam` uses; NaN where either spectrum has zero norm (the pixels
      that SAM excludes).

    So ``sqrt(mean(rmse_map²))`` equals :func:`~hmifbench.metrics.rmse` and ``nanmean(sam_map)``
    equals :func:`~hmifbench.metrics.sam` (up to rounding).

    Returns
    -------
    rmse_map, sam_map : ndarray (rows, cols), float64
    """
    x, y = check_pair(reference, estimate, crop)
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    rmse_map = np.sqrt(np.mean((x - y) ** 2, axis=2))
    nx = np.linalg.norm(x, axis=2, keepdims=True)
    ny = np.linalg.norm(y, axis=2, keepdims=True)
    valid = (nx[..., 0] > 0) & (ny[..., 0] > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        a, b = x / nx, y / ny
        angle = 2.0 * np.arctan2(np.linalg.norm(a - b, axis=2), np.linalg.norm(a + b, axis=2))
    sam_map = np.where(valid, np.degrees(angle), np.nan)
    return rmse_map, sam_map
