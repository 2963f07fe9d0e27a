"""Blind estimation of the PSF, the SRF and the MSI's radiometry, shared by the blind methods.

HySure's estimator (Simões, Bioucas-Dias, Almeida and Chanussot, "A convex formulation for
hyperspectral image superresolution via subspace-based regularization", IEEE TGRS 53(6),
2015, §IV): both images are brought to a common resolution, where the MSI band j is a linear
combination of the HSI bands and the LR-HSI projected by the SRF equals the MSI blurred by the
PSF and decimated. Each unknown is the solution of a small regularised least-squares problem,
alternated a few times. The paper's spectral response is not forced to unit gain; here it is
written ``g_j · r_j`` (r_j ≥ 0 summing to 1, gain g_j > 0) plus an offset o_j per MSI band:

    MSI_j ≈ g_j · Σ_k r_jk · HSI_k + o_j

because two real sensors are calibrated separately (see :mod:`hmifbench.observation`).

How a method uses the whole model is decided here, once: :func:`known_or_estimated_degradation`
gives it a problem whose HR-MSI is radiometrically corrected, ``(Ym_j − o_j) / g_j``, with the
PSF and the unit-sum SRF filled in (given or estimated). The method then fuses as under the
plain model. HySure, FUSE, LTMR and CNMF (with its own PSF/SRF estimator) all go through it.
Methods import it from here, never from each other's modules.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, NamedTuple, Optional

import numpy as np

from hmifbench.errors import InputError
from hmifbench.method import FusionProblem
from hmifbench.observation import (BORDERS, DEFAULT_BORDER, blur, check_radiometry,
                                   fwhm_gaussian_params, gaussian_psf, remove_radiometry,
                                   spatial_degrade)

__all__ = ["Degradation", "ResolvedDegradation", "band_support", "estimate_degradation",
           "fit_spectral_response", "known_or_estimated_degradation", "psf_design_matrix"]


#: Default weight λ_O of the offsets' penalty in :func:`fit_spectral_response`.
OFFSET_WEIGHT = 1e-5


class Degradation(NamedTuple):
    """The observation model relating an LR-HSI and an HR-MSI.

    psf : (k, k), sums to 1; srf : (b, B), rows ≥ 0 summing to 1; gain : (b,) > 0;
    offset : (b,). ``Ym_j = gain_j · (X · srfᵀ)_j + offset_j``.
    """

    psf: np.ndarray
    srf: np.ndarray
    gain: np.ndarray
    offset: np.ndarray


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


def fit_spectral_response(lr_hsi: np.ndarray, lr_msi: np.ndarray, lambda_r: float = 0.0,
                          support: Optional[np.ndarray] = None, fit_offset: bool = True,
                          lambda_o: float = OFFSET_WEIGHT) -> tuple[np.ndarray, np.ndarray]:
    """Per MSI band j, the response ρ_j ≥ 0 (gain included) and offset o_j minimising
    ``(1/n)‖Yh ρ_j + o_j − m_j‖² + λ_O·o_j² + λ_R·g·‖D ρ_j‖²`` (paper (15)–(16), with
    non-negativity and an offset), g the mean diagonal of the normal matrix so that λ_R is
    unit-free.

    The small weight λ_O on the offset only matters where the data cannot tell an offset from
    a combination of HSI bands that is constant over the scene (e.g. a scene mixed from a few
    materials whose abundances sum to one: there, any such combination can be traded against
    the offset at no cost); it then picks the smallest offset instead of an arbitrary one.
    Minimising over o_j first gives ``o_j = (mean(m_j) − mean(Yh) ρ_j) / (1 + λ_O)``.

    Parameters
    ----------
    lr_hsi : ndarray (n, B)
        HSI pixels.
    lr_msi : ndarray (n, b)
        MSI pixels on the same grid.
    lambda_r : float
        Spectral smoothness weight (0: plain non-negative least squares).
    support : ndarray of bool (b, B), optional
        Which HSI bands each MSI band may respond to.
    fit_offset : bool
        Fit o_j (else o_j = 0).
    lambda_o : float
        Weight λ_O of the offset penalty (≥ 0).

    Returns
    -------
    response : ndarray (b, B)
        Rows not normalised: row j is ``g_j · r_j``.
    offset : ndarray (b,)
    """
    from scipy.optimize import nnls

    a_all = np.asarray(lr_hsi, dtype=np.float64)
    m_all = np.asarray(lr_msi, dtype=np.float64)
    n, B = a_all.shape
    b = m_all.shape[1]
    a_mean, m_mean = a_all.mean(axis=0), m_all.mean(axis=0)
    # Minimising over o first: o = (mean(m) − mean(Yh) ρ) / (1 + λ_O), which leaves the
    # data term with the means scaled by `keep` subtracted from the normal equations.
    keep = 1.0 / (1.0 + lambda_o) if fit_offset else 0.0
    response = np.zeros((b, B))
    for j in range(b):
        idx = np.flatnonzero(support[j]) if support is not None else np.arange(B)
        a = a_all[:, idx]
        gram = a.T @ a / n - keep * np.outer(a_mean[idx], a_mean[idx])
        level = np.trace(gram) / idx.size
        if idx.size > 1:
            d = _difference_matrix(idx.size)
            gram = gram + lambda_r * level * d.T @ d
        gram += 1e-12 * level * np.eye(idx.size)
        rhs = a.T @ m_all[:, j] / n - keep * a_mean[idx] * m_mean[j]
        # min rᵀGr − 2rᵀc subject to r ≥ 0, as an NNLS on the Cholesky factor G = UᵀU.
        u = np.linalg.cholesky(gram).T
        response[j, idx] = nnls(u, np.linalg.solve(u.T, rhs), maxiter=50 * idx.size)[0]
    offset = keep * (m_mean - response @ a_mean)
    return response, offset


def split_gain(response: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(srf, gain)`` from a response ``g_j · r_j``: the rows normalised to sum 1, and their
    sums; :class:`InputError` when a row is zero (no HSI band explains that MSI band)."""
    sums = np.asarray(response, dtype=np.float64).sum(axis=1)
    if np.any(sums <= 0):
        bad = np.flatnonzero(sums <= 0).tolist()
        raise InputError(f"SRF estimation failed for MSI band(s) {bad}: no non-negative "
                         "combination of HSI bands explains them")
    return response / sums[:, None], sums


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
                         psf=None, srf=None, msi_gain=None, msi_offset=None,
                         srf_support=None, fit_offset: bool = True, alternations: int = 3,
                         prefilter_sigma: float = 1.0) -> Degradation:
    """Estimate the PSF, the SRF and the MSI's gains and offsets (HySure, paper §IV).

    Both sensors see the same scene X, so ``Yh ρᵀ + o = decimate(PSF ⋆ Ym)`` up to noise,
    with ``ρ_j = g_j · r_j`` (each side is X blurred, decimated and seen through MSI band j;
    the PSF sums to 1, so the offset passes through the blur). HySure fits the response and the
    PSF to this relation with quadratic smoothness priors:

        min  ‖Yh ρᵀ + 1oᵀ − decimate(PSF ⋆ Ym)‖² + λ_R ‖ρ Dᵀ‖² + λ_B ‖∇ PSF‖²

    Here ρ ≥ 0, o is free, and the PSF is constrained to the simplex (≥ 0, unit DC gain) inside
    the solve (the paper solves the unconstrained quadratic and normalises afterwards; without
    the constraints the ill-conditioned normal equations turn small errors of ρ into wide,
    oscillating kernels — in our tests the second-moment width came out 30–70 % too large).
    The paper does not force unit gain on the response either; the gains are the row sums of ρ
    and the SRF its normalised rows.

    1. First ρ and o, on strongly blurred versions of both images, where the unknown relative
       blur hardly matters (paper (15)–(16)): the LR-HSI is blurred by a Gaussian of
       ``prefilter_sigma`` LR pixels; the MSI by the matching Gaussian on the HR grid
       (σ = √((prefilter_sigma·s)² + σ₀²), σ₀ = s/2.355) and decimated.
    2. Then the PSF given ρ and o, on the unblurred data (paper (14)).
    3. Here, additionally, (ρ, o) given the PSF and the PSF given (ρ, o) again,
       ``alternations`` times in all (block-coordinate descent on the same objective).

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
    msi_gain, msi_offset : array_like (b,), optional
        The MSI's known radiometry, used with a known ``srf`` (None: 1 and 0). The gains and
        offsets are estimated exactly when the SRF is.
    srf_support : array_like of bool (b, B), optional
        Which HSI bands each MSI band may respond to (the paper's band "intersection"; see
        :func:`band_support`); default all.
    fit_offset : bool
        Estimate the offsets (else they are 0 and only the gains are estimated).
    alternations : int
        Number of (PSF, SRF) refinement rounds after the initial SRF (≥ 1).
    prefilter_sigma : float
        Width of the LR Gaussian used for the initial SRF estimate, in LR pixels.

    Returns
    -------
    Degradation
        ``(psf, srf, gain, offset)``: the PSF (non-negative, sums to 1), the SRF (rows ≥ 0
        summing to 1), the gains (> 0) and offsets of the MSI bands; the given ones where given.
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
    gain, bias = check_radiometry(msi_gain, msi_offset, b, "estimate_degradation")
    yh_mat = yh.reshape(n, B)

    def fit_response(hsi, msi):
        return fit_spectral_response(hsi, msi, lambda_r, support, fit_offset)

    if problem.psf is not None and problem.srf is not None:
        return Degradation(problem.psf, problem.srf, gain, bias)
    if problem.psf is not None:  # only the SRF and radiometry are unknown: one exact solve
        lr_msi = spatial_degrade(problem.hr_msi, problem.psf, s, off, border)
        response, bias = fit_response(yh_mat, lr_msi.reshape(n, b))
        return Degradation(problem.psf, *split_gain(response), bias)

    design = psf_design_matrix(problem.hr_msi, size, s, off, border)  # (n·b, size²)
    if problem.srf is not None:
        target = (yh_mat @ problem.srf.T) * gain + bias
        return Degradation(_estimate_psf(design, target.ravel(), size, lambda_b),
                           problem.srf, gain, bias)

    # Step 1: response and offsets from strongly blurred data.
    lr_sigma = float(prefilter_sigma)
    lr_kernel = gaussian_psf(2 * math.ceil(3 * lr_sigma) + 1, lr_sigma)
    # σ₀ of observation.fwhm_gaussian_psf is the usual guess of the true PSF.
    hr_sigma = math.hypot(lr_sigma * s, fwhm_gaussian_params(s)[1])
    hr_kernel = gaussian_psf(2 * math.ceil(3 * hr_sigma) + 1, hr_sigma)
    yh_blurred = blur(yh, lr_kernel, border).reshape(n, B).astype(np.float64)
    msi_blurred = spatial_degrade(problem.hr_msi, hr_kernel, s, off, border)
    response, bias = fit_response(yh_blurred, msi_blurred.reshape(n, b))

    # Steps 2–3: alternate PSF | response and response | PSF on the unblurred data.
    psf_est = None
    for _ in range(int(alternations)):
        target = yh_mat @ response.T + bias
        psf_est = _estimate_psf(design, target.ravel(), size, lambda_b, start=psf_est)
        lr_msi = (design @ psf_est.ravel()).reshape(n, b)
        response, bias = fit_response(yh_mat, lr_msi)
    return Degradation(psf_est, *split_gain(response), bias)


def band_support(hsi_nm, msi_ranges_nm) -> np.ndarray:
    """The (b, B) mask of HSI bands inside each MSI band's wavelength range.

    Parameters
    ----------
    hsi_nm : array_like (B,)
        HSI band centres, nm.
    msi_ranges_nm : array_like (b, 2)
        ``[low, high]`` of every MSI band, nm.

    Returns
    -------
    ndarray of bool (b, B)
        For :func:`estimate_degradation`'s ``srf_support`` (HySure's band intersection: an MSI
        band only sees HSI bands inside its range). :class:`InputError` when a range holds no
        HSI band.
    """
    wl = np.asarray(hsi_nm, dtype=np.float64).reshape(-1)
    ranges = np.asarray(msi_ranges_nm, dtype=np.float64).reshape(-1, 2)
    mask = (wl[None, :] >= ranges[:, :1]) & (wl[None, :] <= ranges[:, 1:])
    empty = np.flatnonzero(~mask.any(axis=1)).tolist()
    if empty:
        raise InputError(f"MSI band(s) {empty} cover no HSI band centre "
                         f"({wl.min():g}–{wl.max():g} nm)")
    return mask


@dataclasses.dataclass
class ResolvedDegradation:
    """What :func:`known_or_estimated_degradation` gives a method.

    problem : the problem to fuse: PSF and unit-sum SRF filled in, the HR-MSI radiometrically
    corrected (``(Ym_j − o_j) / g_j``) and no gain/offset left; degradation : the whole model
    (:class:`Degradation`) relating the *original* pair; estimated : the names of what was
    estimated (``psf``, ``srf``, ``msi_gain``, ``msi_offset``).
    """

    problem: FusionProblem
    degradation: Degradation
    estimated: tuple

    @property
    def psf(self) -> np.ndarray:
        return self.degradation.psf

    @property
    def srf(self) -> np.ndarray:
        return self.degradation.srf

    def fused_fields(self) -> dict:
        """The estimated parts as :class:`~hmifbench.method.Fused` keyword arguments (the
        given ones as None): ``psf``, ``srf``, ``msi_gain``, ``msi_offset``."""
        values = {"psf": self.degradation.psf, "srf": self.degradation.srf,
                  "msi_gain": self.degradation.gain, "msi_offset": self.degradation.offset}
        return {k: (np.asarray(v, dtype=np.float64) if k in self.estimated else None)
                for k, v in values.items()}


def known_or_estimated_degradation(problem: FusionProblem, method_name: str,
                                   estimator: Optional[Callable[[FusionProblem], Degradation]] = None,
                                   **estimator_options) -> ResolvedDegradation:
    """The one place where a method gets the observation model, given or estimated.

    The PSF, SRF, gains and offsets are the problem's own where given (known setting; gain 1
    and offset 0 when the problem has none); the missing ones come from ``estimator`` (default
    :func:`estimate_degradation`, HySure's estimator, called with ``estimator_options``). The
    gains and offsets are estimated with the SRF. The returned problem's HR-MSI is corrected by
    :func:`hmifbench.observation.remove_radiometry`, so that ``Ym = X · Rᵀ`` holds with unit-sum
    rows: the method fuses it as under the plain model, and its output is in the HSI's units.

    Parameters
    ----------
    problem : FusionProblem
    method_name : str
        For error messages.
    estimator : callable, optional
        ``estimator(problem) -> Degradation``, a method's own estimator (CNMF's).
    **estimator_options
        Passed to :func:`estimate_degradation` (``psf_size``, ``lambda_r``, …).
    """
    estimated = []
    if problem.psf is None:
        estimated.append("psf")
    if problem.srf is None:
        estimated += ["srf", "msi_gain", "msi_offset"]
    try:
        if not estimated:
            gain, bias = check_radiometry(problem.msi_gain, problem.msi_offset, problem.msi_bands)
            degradation = Degradation(problem.psf, problem.srf, gain, bias)
        elif estimator is not None:
            degradation = estimator(problem)
        else:
            degradation = estimate_degradation(
                problem.lr_hsi, problem.hr_msi, problem.scale, offset=problem.offset,
                border=problem.border, psf=problem.psf, srf=problem.srf,
                msi_gain=problem.msi_gain, msi_offset=problem.msi_offset, **estimator_options)
    except InputError as err:
        raise InputError(f"method {method_name!r}: {err}") from None
    degradation = Degradation(*(np.asarray(v, dtype=np.float64) for v in degradation))
    corrected = dataclasses.replace(
        problem, hr_msi=remove_radiometry(problem.hr_msi, degradation.gain, degradation.offset),
        psf=degradation.psf, srf=degradation.srf, msi_gain=None, msi_offset=None)
    return ResolvedDegradation(corrected, degradation, tuple(estimated))
