"""Small numerical helpers shared by the linear methods (not a public API)."""

from __future__ import annotations

import math

import numpy as np

from hmifbench.observation import gaussian_psf, spatial_degrade


def keys_weights(n_out: int, n_in: int, scale: int, offset: int, a: float = -0.5) -> np.ndarray:
    """(n_out × n_in) matrix of Keys cubic-convolution weights (Keys 1981, a = −0.5).

    HR pixel p sits at LR coordinate ``(p − offset) / scale``, the inverse of the decimation
    phase of :func:`hmifbench.observation.decimate`. Samples beyond the edge repeat the
    edge pixel. Rows sum to 1.
    """
    t = (np.arange(n_out) - offset) / scale
    base = np.floor(t).astype(int)
    w = np.zeros((n_out, n_in))
    for k in range(-1, 3):
        j = base + k
        x = np.abs(t - j)
        wk = np.where(x <= 1, (a + 2) * x**3 - (a + 3) * x**2 + 1,
                      np.where(x < 2, a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a, 0.0))
        np.add.at(w, (np.arange(n_out), np.clip(j, 0, n_in - 1)), wk)
    return w


def upsample_cubic(lr, scale: int, offset: int) -> np.ndarray:
    """Bicubic (Keys) upsampling of a (h, w, B) cube to (s·h, s·w, B), float32."""
    lr = np.asarray(lr, dtype=np.float64)
    h, w, _ = lr.shape
    a = keys_weights(h * scale, h, scale, offset)
    b = keys_weights(w * scale, w, scale, offset)
    return np.einsum("ph,hwc,qw->pqc", a, lr, b, optimize=True).astype(np.float32)


def default_psf(scale: int) -> np.ndarray:
    """A Gaussian whose FWHM is one LR pixel (σ = s / 2.3548), size the odd integer ≥ 6σ:
    the usual MTF-matched stand-in when the true PSF is unknown."""
    sigma = scale / (2 * math.sqrt(2 * math.log(2)))
    size = 2 * math.ceil(3 * sigma) + 1
    return gaussian_psf(size, sigma)


def degrade_msi(problem) -> np.ndarray:
    """The HR-MSI brought to the LR grid with the problem's PSF (or :func:`default_psf`)."""
    psf = problem.psf if problem.psf is not None else default_psf(problem.scale)
    return spatial_degrade(problem.hr_msi, psf, problem.scale, problem.offset, problem.border)
