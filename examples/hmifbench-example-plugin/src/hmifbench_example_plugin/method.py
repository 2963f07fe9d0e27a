"""``msi_regression``: spectral regression of the HR-MSI, corrected by LR-HSI back-projection.

The hmifbench plugin contract forbids only heavy imports at module level (torch, tensorflow,
jax): listing methods and building the workflow import this module. numpy and scipy are fine:
hmifbench itself has loaded them already.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from hmifbench.errors import InputError
from hmifbench.method import Fused, FusionProblem, Method, Resources, param
from hmifbench.observation import fwhm_gaussian_psf, spatial_degrade


class MSIRegression(Method):
    """Least-squares spectral upsampling of the HR-MSI, combined with the LR-HSI.

    Let S be the spatial degradation (the PSF, or a Gaussian whose FWHM is one LR pixel when it
    is not given, then decimation at the problem's phase) and U cubic-spline interpolation from
    the LR to the HR grid (LR pixel i at HR position ``s·i + offset``). With the LR-HSI Y
    (h·w × B) and the HR-MSI M (H·W × b):

    1. ``M_L = S(M)``: the MSI on the LR grid.
    2. ``W = argmin ‖[M_L 1]·W − Y‖² + ridge·‖D^½ W‖²``, D the diagonal of the Gram matrix of
       ``[M_L 1]``: how every HSI band is made of MSI bands, learnt on the LR grid, so no SRF
       is needed (the regression step of hypersharpening, Selva et al. 2015).
    3. ``X₀ = [M 1]·W``: the MSI spectrally upsampled to B bands. It has all the MSI's spatial
       detail but only b + 1 degrees of freedom per pixel.
    4. Back-projection, ``X_{t+1} = X_t + U(Y − S(X_t))`` for ``backprojection_steps`` steps
       (Irani and Peleg 1991): puts back what the LR-HSI says and the regression missed.

    The method is blind (it needs neither PSF nor SRF) and has no iterations to converge.

    References
    ----------
    M. Selva, B. Aiazzi, F. Butera, L. Chiarantini, S. Baronti, "Hyper-sharpening: a first
    approach on SIM-GA data", IEEE JSTARS 8(6):3008–3024, 2015.
    M. Irani, S. Peleg, "Improving resolution by image registration", CVGIP: Graphical Models
    and Image Processing 53(3):231–239, 1991.
    """

    name = "msi_regression"
    family = "linear"
    training = "none"
    blind = True
    resources = Resources(gpu=0, mem_mb=2000, runtime_min=10, threads=1)
    citation = ("M. Selva et al., IEEE JSTARS 8(6):3008-3024, 2015; M. Irani, S. Peleg, "
                "CVGIP:GMIP 53(3):231-239, 1991")
    licence = "BSD-3-Clause"

    @dataclass
    class Params:
        ridge: float = param(1e-6, "Tikhonov weight of the spectral regression, relative to "
                                   "the Gram diagonal")
        backprojection_steps: int = param(3, "back-projection steps X += U(Y − S(X)); 0 keeps "
                                             "the regressed MSI")

    @classmethod
    def validate_params(cls, p):
        if not (p.ridge >= 0 and math.isfinite(p.ridge)):
            raise InputError(f"parameter 'ridge' must be finite and >= 0, got {p.ridge}")
        if p.backprojection_steps < 0:
            raise InputError("parameter 'backprojection_steps' must be >= 0, got "
                             f"{p.backprojection_steps}")

    def fuse(self, problem: FusionProblem, *, state=None, seed=0, device="auto", progress=None):
        self.check_problem(problem)
        s, offset, border = problem.scale, problem.offset, problem.border
        psf = problem.psf if problem.psf is not None else fwhm_gaussian_psf(s)

        def degrade(x):
            return spatial_degrade(x, psf, s, offset, border).astype(np.float64)

        y = problem.lr_hsi.astype(np.float64)
        msi = problem.hr_msi.astype(np.float64)
        bands, n_lr = problem.bands, y.shape[0] * y.shape[1]
        design_lr = np.concatenate([degrade(msi).reshape(n_lr, -1), np.ones((n_lr, 1))], axis=1)
        gram = design_lr.T @ design_lr
        gram += self.params.ridge * np.diag(np.diag(gram))
        weights = np.linalg.solve(gram, design_lr.T @ y.reshape(n_lr, bands))  # (b+1, B)
        design_hr = np.concatenate([msi, np.ones(msi.shape[:2] + (1,))], axis=2)
        x = design_hr @ weights
        for _ in range(self.params.backprojection_steps):
            x += interpolate(y - degrade(x), s, offset)
        residual = float(np.sqrt(np.mean((y - degrade(x)) ** 2)))
        return Fused(x.astype(np.float32), extras={"lr_residual_rmse": residual})


def interpolate(lr, scale: int, offset: int):
    """Cubic-spline interpolation of (h, w, B) to (s·h, s·w, B): HR pixel p sits at LR
    coordinate (p − offset) / s, the inverse of the decimation; edges repeat."""
    h, w, bands = lr.shape
    rows = (np.arange(h * scale) - offset) / scale
    cols = (np.arange(w * scale) - offset) / scale
    grid = np.meshgrid(rows, cols, indexing="ij")
    return np.stack([ndimage.map_coordinates(lr[..., k], grid, order=3, mode="nearest")
                     for k in range(bands)], axis=-1)
