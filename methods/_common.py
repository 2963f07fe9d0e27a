"""Small helpers shared by the linear methods (not a public API)."""

from __future__ import annotations

import numpy as np

from hmifbench.observation import fwhm_gaussian_psf, spatial_degrade


def degrade_msi(problem) -> np.ndarray:
    """The HR-MSI brought to the LR grid with the problem's PSF (or, when it is not given,
    the Gaussian whose FWHM is one LR pixel, :func:`hmifbench.observation.fwhm_gaussian_psf`)."""
    psf = problem.psf if problem.psf is not None else fwhm_gaussian_psf(problem.scale)
    return spatial_degrade(problem.hr_msi, psf, problem.scale, problem.offset, problem.border)
