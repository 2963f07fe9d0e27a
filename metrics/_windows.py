"""The 1-D windows of the windowed indices (SSIM, UIQI); they are applied in :mod:`._kernels`."""

from __future__ import annotations

import numpy as np


def gaussian_kernel(sigma: float = 1.5, truncate: float = 3.5) -> np.ndarray:
    """Sampled 1-D Gaussian of radius ``int(truncate·σ + 0.5)``, normalised to sum 1.

    With σ = 1.5 and truncate = 3.5 this is the 11-tap window of Wang et al. (2004) and the
    exact kernel ``scipy.ndimage.gaussian_filter`` (hence scikit-image) uses.
    """
    radius = int(truncate * sigma + 0.5)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (t / sigma) ** 2)
    return w / w.sum()


def box_kernel(size: int) -> np.ndarray:
    """A 1-D uniform window of ``size`` taps summing to 1."""
    return np.full(int(size), 1.0 / int(size))
