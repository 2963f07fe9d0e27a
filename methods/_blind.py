"""Blind estimation of the PSF and SRF, shared by the methods that run blind.

HySure's estimator (Simões, Bioucas-Dias, Almeida and Chanussot, "A convex formulation for
hyperspectral image superresolution via subspace-based regularization", IEEE TGRS 53(6),
2015, §IV): both images are brought to a common resolution, where the MSI band j is a linear
combination of the HSI bands (the SRF row r_j) and the LR-HSI projected by the SRF equals the
MSI blurred by the PSF and decimated. Each unknown is the solution of a small regularised
least-squares problem, alternated a few times.

FUSE and LTMR use it through :func:`known_or_estimated_degradation` in the blind setting;
HySure uses it directly. Methods import it from here, never from each other's modules.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from hmifbench.errors import InputError
from hmifbench.method import FusionProblem
from hmifbench.observation import (BORDERS, DEFAULT_BORDER, blur, fwhm_gaussian_params,
                                   gaussian_psf, spatial_degrade)

__all__ = ["estimate_degradation", "known_or_estimated_degradation", "psf_design_matrix"]


def psf_design_matrix(hr_msi, size: int, scale: int, offset: int,
                      border: str = DEFAULT_BORDER) -> np.ndarray:
    """The linear map from a (size × size) PSF to the MSI blurred and decimated by it.

    Returns A of shape (h·w·b, size²) such that ``A @ psf.ravel()`` equals
    ``spatial_degrade(hr_msi, psf, scale, offset, border).ravel()`` (pixels × bands, C order)
    for every PSF: entry ((i, j, band), (u, v)) is the MSI pixel
    ``(s·i + offset + u − c, s·j + offset + v − c)`` with ``c = (size − 1) // 2``, the
    conventions of :mod:`hmifbench.observation` (the border extends the image the same way).
    """
    x = np.asarray(hr_msi, dtype=np.float64)
    H, W, b = x.shape
    s, k = int(scale), int(size)
    c = (k - 1) // 2
    pad_mode = BORDERS[border][0] if border in BORDERS else None
    if pad_mode is None:
        raise InputError(f"unknown border mode {border!r}; choose one of {sorted(BORDERS)}")
    xp = np.pad(x, ((c, k - 1 - c), (c, k - 1 - c), (0, 0)), mode=pad_mode)
    h, w = H // s, W // s
    cols = [xp[offset + u: offset + u + s * h: s, offset + v: offset + v + s * w: s].ravel()
            for u in range(k) for v in range(k)]
    return np.stack(cols, axis=1)


def _difference_matrix(n: int) -> np.ndarray:
    """(n−1 × n) first differences."""
    return np.eye(n - 1, n, k=1) - np.eye(n - 1, n)


def _kernel_smoothness(h: np.ndarray) -> np.ndarray:
    """DᵀD h for the vertical plus horizontal first differences inside a (k × k) kernel."""
    out = np.zeros_like(h)
    d = h[1:] - h[:-1]
    out[1:] += d
    out[:-1] -= d
    d = h[:, 1:] - h[:, :-1]
    out[:, 1:] += d
    out[:, :-1] -= d
    return out


def _estimate_srf(lr_hsi: np.ndarray, lr_msi: np.ndarray, lambda_r: float,
                  support: Optional[np.ndarray]) -> np.ndarray:
    """Rows r_j ≥ 0 minimising ‖Yh r_j − m_j‖² + λ_R·g·‖D r_j‖² (paper (15)–(16), with a
    non-negativity constraint), g the mean diagonal of YhᵀYh so that λ_R is unit-free. Rows
    are not normalised: their sums carry the gain."""
    from scipy.optimize import nnls

    n, B = lr_hsi.shape
    b = lr_msi.shape[1]
    srf = np.zeros((b, B))
    for j in range(b):
        idx = np.flatnonzero(support[j]) if support is not None else np.arange(B)
        a = lr_hsi[:, idx]
        gram = a.T @ a / n
        level = np.trace(gram) / idx.size
        if idx.size > 1:
            d = _difference_matrix(idx.size)
            gram = gram + lambda_r * level * d.T @ d
        gram += 1e-12 * level * np.eye(idx.size)
        rhs = a.T @ lr_msi[:, j] / n
        # min rᵀGr − 2rᵀc subject to r ≥ 0, as an NNLS on the Cholesky factor G = UᵀU.
        u = np.linalg.cholesky(gram).T
        srf[j, idx] = nnls(u, np.linalg.solve(u.T, rhs), maxiter=50 * idx.size)[0]
    return srf


def _normalise_rows(srf: np.ndarray) -> np.ndarray:
    sums = srf.sum(axis=1, keepdims=True)
    if np.any(sums <= 0):
        bad = np.flatnonzero(sums[:, 0] <= 0).tolist()
        raise InputError(f"SRF estimation failed for MSI band(s) {bad}: no non-negative "
                         "combination of HSI bands explains them")
    return srf / sums


def _project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection on {h ≥ 0, Σh = 1} (sort-based; Held, Wolfe, Crowder 1974)."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    k = np.arange(1, v.size + 1)
    rho = np.flatnonzero(u - css / k > 0)[-1]
    return np.maximum(v - css[rho] / (rho + 1), 0.0)


def _estimate_psf(design: np.ndarray, target: np.ndarray, size: int, lambda_b: float,
                  start: Optional[np.ndarray] = None, iterations: int = 1000,
                  tol: float = 1e-6) -> np.ndarray:
    """The kernel h minimising (1/m)‖A h − t‖² + λ_B·g·‖D h‖² over the simplex h ≥ 0, Σh = 1.

    Paper (14), with the kernel's unit DC gain and non-negativity imposed in the solve: the
    first removes the scale ambiguity between PSF and SRF, the second is what makes the
    estimate stable (without it, the ill-conditioned normal equations turn small SRF errors
    into wide, oscillating kernels). g is the mean diagonal of AᵀA/m, so λ_B is unit-free.
    Solved by FISTA with gradient restarts (Beck & Teboulle 2009; O'Donoghue & Candès 2015)
    and exact projection on the simplex.
    """
    m, K = design.shape
    level = float(np.einsum("ij,ij->", design, design)) / (m * K)
    weight = lambda_b * level
    c = design.T @ target / m
    if K <= 2 * m:  # matrix–vector products with the Gram matrix are cheaper
        gram = design.T @ design / m
        data_term = lambda v: gram @ v
    else:
        data_term = lambda v: design.T @ (design @ v) / m
    grad_quad = lambda v: data_term(v) + weight * _kernel_smoothness(v.reshape(size, size)).ravel()

    v = np.ones(K) / math.sqrt(K)  # power iteration for the Lipschitz constant
    for _ in range(50):
        v = grad_quad(v)
        v /= np.linalg.norm(v) + 1e-300
    lipschitz = 1.05 * float(v @ grad_quad(v)) + 1e-300

    h = _project_simplex(np.full(K, 1.0 / K) if start is None else start.ravel())
    y, t = h.copy(), 1.0
    for _ in range(int(iterations)):
        h_new = _project_simplex(y - (grad_quad(y) - c) / lipschitz)
        step = h_new - h
        if (y - h_new) @ step > 0:  # momentum points uphill: restart
            t, y = 1.0, h_new.copy()
        else:
            t_new = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
            y = h_new + (t - 1.0) / t_new * step
            t = t_new
        h = h_new
        if np.linalg.norm(step) <= tol * np.linalg.norm(h):
            break
    return h.reshape(size, size)


def estimate_degradation(lr_hsi, hr_msi, scale: int, psf_size: Optional[int] = None, *,
                         offset: Optional[int] = None, border: str = DEFAULT_BORDER,
                         lambda_r: float = 1e-3, lambda_b: float = 1e-3,
                         psf=None, srf=None, srf_support=None, alternations: int = 3,
                         prefilter_sigma: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Estimate the PSF and the SRF relating an LR-HSI and an HR-MSI (HySure, paper §IV).

    Both sensors see the same scene X, so ``Yh Rᵀ = decimate(PSF ⋆ Ym)`` up to noise (each
    side is X blurred, decimated and projected on the MSI bands). HySure fits R and the PSF to
    this relation with quadratic smoothness priors:

        min  ‖Yh Rᵀ − decimate(PSF ⋆ Ym)‖² + λ_R ‖R Dᵀ‖² + λ_B ‖∇ PSF‖²

    Here R ≥ 0, and the PSF is constrained to the simplex (≥ 0, unit DC gain) inside the solve
    (the paper solves the unconstrained quadratic and normalises afterwards; without the
    constraints the ill-conditioned normal equations turn small errors of R into wide,
    oscillating kernels — in our tests the second-moment width came out 30–70 % too large).

    1. First R, on strongly blurred versions of both images, where the unknown relative blur
       hardly matters (paper (15)–(16)): the LR-HSI is blurred by a Gaussian of
       ``prefilter_sigma`` LR pixels; the MSI by the matching Gaussian on the HR grid
       (σ = √((prefilter_sigma·s)² + σ₀²), σ₀ = s/2.355) and decimated.
    2. Then the PSF given R, on the unblurred data (paper (14)).
    3. Here, additionally, R given the PSF and the PSF given R again, ``alternations`` times
       in all (block-coordinate descent on the same objective).

    Parameters
    ----------
    lr_hsi : array_like (h, w, B)
    hr_msi : array_like (s·h, s·w, b)
    scale : int
        Resolution ratio s.
    psf_size : int, optional
        Side of the estimated kernel in HR pixels; default ``2·s + 1``. The kernel's centre is
        ``(psf_size − 1) // 2`` (the suite's convention), so an odd size can hold kernels
        centred on either side of the middle. The support should not be much larger than the
        true kernel when the LR image has few pixels: at ×32 on a 512² scene (768 equations),
        a σ = 2 Gaussian is recovered within 2 % with a 17×17 support but comes out twice as
        wide with the default 65×65, which the smoothness prior then fills.
    offset : int, optional
        Decimation phase (LR pixel i is blurred HR pixel s·i + offset); default ``s//2 − 1``.
    border : str
        Border mode of the blur (see :mod:`hmifbench.observation`).
    lambda_r, lambda_b : float
        Weights of the spectral and spatial smoothness priors, relative to the mean diagonal of
        the respective normal matrices, so that they depend neither on the image size nor on
        its brightness (the paper's λ_R = λ_B = 10 multiply plain sums).
    psf, srf : array_like, optional
        A known PSF or SRF; only the other is estimated.
    srf_support : array_like of bool (b, B), optional
        Which HSI bands each MSI band may respond to (the paper's band "intersection");
        default all.
    alternations : int
        Number of (PSF, SRF) refinement rounds after the initial SRF (≥ 1).
    prefilter_sigma : float
        Width of the LR Gaussian used for the initial SRF estimate, in LR pixels.

    Returns
    -------
    psf : ndarray (psf_size, psf_size)
        Non-negative, sums to 1 (the given one when ``psf`` was given).
    srf : ndarray (b, B)
        Non-negative rows summing to 1 (the given one when ``srf`` was given).
    """
    problem = FusionProblem(lr_hsi, hr_msi, scale, psf=psf, srf=srf, offset=offset,
                            border=border)
    s, off = problem.scale, problem.offset
    yh = problem.lr_hsi.astype(np.float64)
    h, w, B = yh.shape
    b = problem.msi_bands
    n = h * w
    size = 2 * s + 1 if psf_size is None else int(psf_size)
    if size < 1:
        raise InputError(f"psf_size must be >= 1, got {psf_size}")
    if not lambda_r >= 0 or not lambda_b >= 0:
        raise InputError(f"lambda_r and lambda_b must be >= 0, got {lambda_r}, {lambda_b}")
    if int(alternations) < 1:
        raise InputError(f"alternations must be >= 1, got {alternations}")
    if not prefilter_sigma > 0:
        raise InputError(f"prefilter_sigma must be > 0, got {prefilter_sigma}")
    support = None
    if srf_support is not None:
        support = np.asarray(srf_support, dtype=bool)
        if support.shape != (b, B) or not support.any(axis=1).all():
            raise InputError(f"srf_support must be a ({b}, {B}) boolean mask with at least one "
                             f"band per row, got shape {support.shape}")
    yh_mat = yh.reshape(n, B)

    if problem.psf is not None and problem.srf is not None:
        return problem.psf, problem.srf
    if problem.psf is not None:  # only the SRF is unknown: one exact solve
        lr_msi = spatial_degrade(problem.hr_msi, problem.psf, s, off, border)
        return problem.psf, _normalise_rows(_estimate_srf(
            yh_mat, lr_msi.reshape(n, b).astype(np.float64), lambda_r, support))

    design = psf_design_matrix(problem.hr_msi, size, s, off, border)  # (n·b, size²)
    if problem.srf is not None:
        return _estimate_psf(design, (yh_mat @ problem.srf.T).ravel(), size, lambda_b), problem.srf

    # Step 1: SRF from strongly blurred data.
    lr_sigma = float(prefilter_sigma)
    lr_kernel = gaussian_psf(2 * math.ceil(3 * lr_sigma) + 1, lr_sigma)
    # σ₀ of observation.fwhm_gaussian_psf is the usual guess of the true PSF.
    hr_sigma = math.hypot(lr_sigma * s, fwhm_gaussian_params(s)[1])
    hr_kernel = gaussian_psf(2 * math.ceil(3 * hr_sigma) + 1, hr_sigma)
    yh_blurred = blur(yh, lr_kernel, border).reshape(n, B).astype(np.float64)
    msi_blurred = spatial_degrade(problem.hr_msi, hr_kernel, s, off, border)
    srf_est = _estimate_srf(yh_blurred, msi_blurred.reshape(n, b).astype(np.float64),
                            lambda_r, support)

    # Steps 2–3: alternate PSF | SRF and SRF | PSF on the unblurred data.
    psf_est = None
    for _ in range(int(alternations)):
        psf_est = _estimate_psf(design, (yh_mat @ srf_est.T).ravel(), size, lambda_b,
                                start=psf_est)
        lr_msi = (design @ psf_est.ravel()).reshape(n, b)
        srf_est = _estimate_srf(yh_mat, lr_msi, lambda_r, support)
    return psf_est, _normalise_rows(srf_est)


def known_or_estimated_degradation(problem: FusionProblem, method_name: str):
    """(psf, srf, estimated) for a method that needs both: the problem's own, or, for the
    missing ones, those of :func:`estimate_degradation` (HySure's
    quadratic estimator; blind setting)."""
    if problem.psf is not None and problem.srf is not None:
        return problem.psf, problem.srf, False
    psf, srf = estimate_degradation(problem.lr_hsi, problem.hr_msi, problem.scale,
                                    offset=problem.offset, border=problem.border,
                                    psf=problem.psf, srf=problem.srf)
    return np.asarray(psf, dtype=np.float64), np.asarray(srf, dtype=np.float64), True
