"""``hysure``: HySure — convex, subspace-based fusion with vector total variation, plus its
estimator of the relative spatial (PSF) and spectral (SRF) responses.

Simões, Bioucas-Dias, Almeida, Chanussot, "A convex formulation for hyperspectral image
superresolution via subspace-based regularization", IEEE TGRS 53(6):3373–3388, 2015
(arXiv:1411.4005). Section and equation references below are to that paper; equation numbers
follow the authors' public description of their code ("(14)" for the blur estimate, "(15)–(16)"
for the spectral response, the Appendix for the ADMM) and were not re-checked against the
printed journal version.

:func:`estimate_degradation` is public and reusable: any method that needs a known PSF/SRF can
run in the blind setting with the estimates, e.g.::

    psf, srf = estimate_degradation(problem.lr_hsi, problem.hr_msi, problem.scale)
    known = dataclasses.replace(problem, psf=psf, srf=srf)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np

from hmifbench.errors import InputError
from hmifbench.methods.base import Fused, FusionProblem, Method, Resources, param

__all__ = ["HySure", "estimate_degradation", "hysure_fuse", "psf_design_matrix"]


# ------------------------------------------------------------------------------------------
# Degradation estimation (paper §IV)
# ------------------------------------------------------------------------------------------

def psf_design_matrix(hr_msi, size: int, scale: int, offset: int,
                      border: str = "reflect101") -> np.ndarray:
    """The linear map from a (size × size) PSF to the MSI blurred and decimated by it.

    Returns A of shape (h·w·b, size²) such that ``A @ psf.ravel()`` equals
    ``spatial_degrade(hr_msi, psf, scale, offset, border).ravel()`` (pixels × bands, C order)
    for every PSF: entry ((i, j, band), (u, v)) is the MSI pixel
    ``(s·i + offset + u − c, s·j + offset + v − c)`` with ``c = (size − 1) // 2``, the
    conventions of :mod:`hmifbench.observation` (the border extends the image the same way).
    """
    from hmifbench.observation import BORDERS

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
                         offset: Optional[int] = None, border: str = "reflect101",
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
    from hmifbench.observation import blur, gaussian_psf, spatial_degrade

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
    # σ₀ = s/2.355 is the width of _common.default_psf, the usual guess of the true PSF.
    hr_sigma = math.hypot(lr_sigma * s, s / (2 * math.sqrt(2 * math.log(2))))
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


# ------------------------------------------------------------------------------------------
# Fusion (paper §III and Appendix)
# ------------------------------------------------------------------------------------------

def _workers() -> int:
    """FFT threads: OMP_NUM_THREADS when set (what a scheduler grants a job), else the CPUs
    this process may run on."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _kernel_image(psf: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The PSF as a periodic convolution kernel g on a grid of ``shape``:
    ``g[(c − u) mod N] = psf[u]``, so that ``g ⊛ X`` is the suite's blur (correlation with
    the PSF about its centre c = (k − 1)//2) with periodic borders."""
    k0, k1 = psf.shape
    c0, c1 = (k0 - 1) // 2, (k1 - 1) // 2
    g = np.zeros(shape)
    rows = (c0 - np.arange(k0)) % shape[0]
    cols = (c1 - np.arange(k1)) % shape[1]
    np.add.at(g, (rows[:, None], cols[None, :]), psf)
    return g


def hysure_fuse(lr_hsi: np.ndarray, hr_msi: np.ndarray, psf: np.ndarray, srf: np.ndarray,
                scale: int, offset: int, *, subspace_dim: int = 10, lambda_phi: float = 5e-4,
                lambda_m: float = 1.0, mu: float = 0.05, iterations: int = 200,
                boundary: str = "unknown", init: str = "interpolated",
                progress=None) -> tuple[np.ndarray, dict]:
    """Solve HySure's convex problem by ADMM (SALSA) and return the (H, W, B) estimate.

    Problem (paper §III; Z = E X, E the first ``subspace_dim`` left singular vectors of Yh):

        min_X  ½‖Yh − E X B M‖² + (λ_m/2)‖Ym − R E X‖² + λ_φ Σ_pixels ‖[(X Dh)_j ; (X Dv)_j]‖₂

    The last term is the vector total variation (VTV): at each pixel j, the ℓ2 norm of the
    horizontal and vertical differences of all subspace coefficients together, so edges are
    shared by all bands. Splitting V1 = XB, V2 = X, V3 = X Dh, V4 = X Dv (paper Appendix)
    gives the ADMM iterations

    * X ← argmin Σ_i ‖X G_i − V_i − D_i‖², diagonal in the 2-D DFT (B, Dh, Dv periodic);
    * V1 ← (EᵀYh + μ(XB − D1)) / (1 + μ) on the sampled pixels, XB − D1 elsewhere;
    * V2 ← (λ_m EᵀRᵀRE + μI)⁻¹ (λ_m EᵀRᵀYm + μ(X − D2));
    * (V3, V4) ← vector soft-threshold of (XDh − D3, XDv − D4) at λ_φ/μ, pixel by pixel;
    * D_i ← D_i − (X G_i − V_i).

    Boundaries: the paper assumes periodic images (``boundary="periodic"``). By default
    (``"unknown"``) the image is embedded in a larger periodic grid whose margin (at least the
    PSF radius, a multiple of s) carries no data: the V1 and V2 updates apply their data terms
    only inside the image, so the wrap-around of the FFT never mixes opposite edges (Almeida &
    Figueiredo, "Deconvolving images with unknown boundaries using the alternating direction
    method of multipliers", IEEE TIP 22(8), 2013 — same group, same splitting).

    Returns
    -------
    estimate : ndarray (H, W, B) float32
    info : dict
        ``subspace_dim`` used, padded grid shape, final primal residual (relative).
    """
    from scipy import fft

    checked = FusionProblem(lr_hsi, hr_msi, scale, psf=psf, srf=srf, offset=offset)
    psf, srf = checked.psf, checked.srf
    if psf is None or srf is None:
        raise InputError("hysure_fuse needs a PSF and an SRF (see estimate_degradation)")
    yh = checked.lr_hsi.astype(np.float64)
    ym = checked.hr_msi.astype(np.float64)
    h, w, B = yh.shape
    H, W, b = ym.shape
    s, off = int(scale), int(offset)
    p = int(min(subspace_dim, B, h * w))
    workers = _workers()

    # Subspace (paper §III-A): SVD of the LR-HSI, no centring, so Z = E X holds the mean too.
    yh_mat = yh.reshape(-1, B).T  # (B, n)
    # Left singular vectors = eigenvectors of the (B × B) scatter matrix, largest first.
    evals, evecs = np.linalg.eigh(yh_mat @ yh_mat.T)
    E = evecs[:, ::-1][:, :p]  # (B, p), orthonormal

    if boundary == "periodic":
        margin, Hp, Wp = 0, H, W
    else:
        k0, k1 = psf.shape
        radius = max((k0 - 1) // 2, k0 - 1 - (k0 - 1) // 2, (k1 - 1) // 2, k1 - 1 - (k1 - 1) // 2)
        margin = s * max(1, math.ceil(radius / s))
        Hp = fft.next_fast_len(H + 2 * margin, real=True)
        Wp = fft.next_fast_len(W + 2 * margin, real=True)
    inside = (slice(None), slice(margin, margin + H), slice(margin, margin + W))
    sampled = (slice(None), slice(margin + off, margin + off + s * h, s),
               slice(margin + off, margin + off + s * w, s))

    # float32 arrays and complex64 spectra: half the memory traffic of float64; ADMM's
    # fixed point is not affected at the precision that matters here.
    f32 = np.float32
    rfft2 = lambda a: fft.rfft2(a, axes=(1, 2), workers=workers)
    irfft2 = lambda a: fft.irfft2(a, s=(Hp, Wp), axes=(1, 2), workers=workers)
    fb = fft.rfft2(_kernel_image(np.asarray(psf, dtype=np.float64), (Hp, Wp)))
    fdh = fft.rfft2(_kernel_image(np.array([[1.0, -1.0]]), (Hp, Wp)))  # X[q] − X[q+1]
    fdv = fft.rfft2(_kernel_image(np.array([[1.0], [-1.0]]), (Hp, Wp)))
    inv_denom = (1.0 / (np.abs(fb) ** 2 + np.abs(fdh) ** 2 + np.abs(fdv) ** 2 + 1.0)).astype(f32)
    fbc = np.conj(fb).astype(np.complex64)
    fb = fb.astype(np.complex64)

    # Data terms in the subspace.
    ety = (E.T @ yh_mat).reshape(p, h, w).astype(f32)
    re = np.asarray(srf, dtype=np.float64) @ E  # (b, p)
    v2_matrix = np.linalg.inv(lambda_m * re.T @ re + mu * np.eye(p)).astype(f32)
    ertym = _small_left_matmul(lambda_m * re.T, ym.reshape(-1, b).T).reshape(p, H, W).astype(f32)

    X = np.zeros((p, Hp, Wp), dtype=f32)
    if init == "interpolated":
        from hmifbench.methods._common import upsample_cubic

        up = upsample_cubic(yh, s, off).astype(np.float64)
        up = np.pad(up, ((margin, Hp - H - margin), (margin, Wp - W - margin), (0, 0)), mode="edge")
        X = _small_left_matmul(E.T, up.reshape(-1, B).T).reshape(p, Hp, Wp).astype(f32)
    XB = irfft2(rfft2(X) * fb)
    V1, V2 = XB.copy(), X.copy()
    V3, V4 = np.empty_like(X), np.empty_like(X)
    _dh(X, V3)
    _dv(X, V4)
    D1, D2, D3, D4 = (np.zeros_like(X) for _ in range(4))
    buf, buf2, buf3 = (np.empty_like(X) for _ in range(3))
    tau = f32(lambda_phi / mu)
    # Convergence curve (figure 6): the primal residual at about 50 iterations (not all of
    # them, which would cost about a fifth more time).
    stride = max(1, int(iterations) // 50)
    curve = {"iteration": [], "relative_primal_residual": []}
    for it in range(int(iterations)):
        # X ← (Bᵀ(V1+D1) + (V2+D2) + Dhᵀ(V3+D3) + Dvᵀ(V4+D4)) / (BᵀB + I + DhᵀDh + DvᵀDv)
        np.add(V1, D1, out=buf)
        fx = rfft2(buf)
        np.add(V2, D2, out=buf3)
        np.add(V3, D3, out=buf)
        _dh_t(buf, buf2)
        buf3 += buf2
        np.add(V4, D4, out=buf)
        _dv_t(buf, buf2)
        buf3 += buf2
        fx *= fbc
        fx += rfft2(buf3)
        fx *= inv_denom
        X = irfft2(fx).astype(f32, copy=False)
        fx *= fb
        XB = irfft2(fx).astype(f32, copy=False)

        # V1: HSI data term on the sampled pixels; elsewhere V1 = XB − D1 and D1 stays 0.
        np.subtract(XB, D1, out=V1)
        nu = V1[sampled].copy()
        V1[sampled] = (ety + mu * nu) / (1.0 + mu)
        D1[sampled] = V1[sampled] - nu

        # V2: MSI data term inside the image; outside V2 = X − D2 and D2 stays 0.
        np.subtract(X, D2, out=V2)
        nu = V2[inside].copy()
        V2[inside] = _small_left_matmul(v2_matrix, (ertym + mu * nu).reshape(p, -1)).reshape(nu.shape)
        D2[inside] = V2[inside] - nu

        # (V3, V4): vector soft threshold of the gradients, pixel by pixel.
        _dh(X, buf)
        buf -= D3
        _dv(X, buf2)
        buf2 -= D4
        norm = np.sqrt(np.einsum("phw,phw->hw", buf, buf) + np.einsum("phw,phw->hw", buf2, buf2))
        shrink = np.maximum(1.0 - tau / np.maximum(norm, f32(1e-30)), 0.0).astype(f32)
        np.multiply(buf, shrink, out=V3)
        np.multiply(buf2, shrink, out=V4)
        shrink -= 1.0
        np.multiply(buf, shrink, out=D3)  # D3 = V3 − (XDh − D3)
        np.multiply(buf2, shrink, out=D4)
        if (it + 1) % stride == 0 or it + 1 == int(iterations):
            curve["iteration"].append(it + 1)
            curve["relative_primal_residual"].append(_primal_residual(X, XB, (V1, V2, V3, V4), buf, buf2))
        if progress is not None:
            progress(it + 1, int(iterations))

    Z = _small_left_matmul(E, X[inside].reshape(p, -1).astype(np.float64)).T.reshape(H, W, B)
    info = {"subspace_dim": p, "grid": [Hp, Wp], "margin": margin,
            "relative_primal_residual": _primal_residual(X, XB, (V1, V2, V3, V4), buf, buf2),
            "convergence": curve}
    return Z.astype(np.float32), info


def _primal_residual(X, XB, V, buf, buf2) -> float:
    """‖XG − V‖ relative to ‖XG‖ over the four splittings (XB, X, XDh, XDv against V1…V4):
    how far ADMM is from feasible. Overwrites ``buf`` and ``buf2``."""
    _dh(X, buf)
    _dv(X, buf2)
    gap = sum(float(np.sum((a - v) ** 2, dtype=np.float64))
              for a, v in zip((XB, X, buf, buf2), V))
    size = sum(float(np.sum(a ** 2, dtype=np.float64)) for a in (XB, X, buf, buf2))
    return math.sqrt(gap / max(size, 1e-300))


def _small_left_matmul(m: np.ndarray, x: np.ndarray, cols: int = 4096) -> np.ndarray:
    """``m @ x`` for a small (a × p) ``m`` and a wide (p × N) ``x``, in blocks of ``cols``
    columns, each below OpenBLAS's threading threshold (threaded BLAS spins badly on an
    oversubscribed machine for such skinny, memory-bound products)."""
    out = np.empty((m.shape[0], x.shape[1]), dtype=np.result_type(m, x))
    for i in range(0, x.shape[1], cols):
        np.matmul(m, x[:, i:i + cols], out=out[:, i:i + cols])
    return out


def _dh(x, out):
    """Periodic horizontal difference x[q] − x[q + 1] along the last axis."""
    np.subtract(x[..., :-1], x[..., 1:], out=out[..., :-1])
    np.subtract(x[..., -1], x[..., 0], out=out[..., -1])


def _dh_t(v, out):
    """Adjoint of :func:`_dh`: v[q] − v[q − 1]."""
    np.subtract(v[..., 1:], v[..., :-1], out=out[..., 1:])
    np.subtract(v[..., 0], v[..., -1], out=out[..., 0])


def _dv(x, out):
    """Periodic vertical difference x[q] − x[q + 1] along the second-to-last axis."""
    np.subtract(x[..., :-1, :], x[..., 1:, :], out=out[..., :-1, :])
    np.subtract(x[..., -1, :], x[..., 0, :], out=out[..., -1, :])


def _dv_t(v, out):
    """Adjoint of :func:`_dv`."""
    np.subtract(v[..., 1:, :], v[..., :-1, :], out=out[..., 1:, :])
    np.subtract(v[..., 0, :], v[..., -1, :], out=out[..., 0, :])


class HySure(Method):
    """HySure: hyperspectral super-resolution by a convex, subspace-based VTV formulation.

    Simões, Bioucas-Dias, Almeida, Chanussot, "A convex formulation for hyperspectral image
    superresolution via subspace-based regularization", IEEE TGRS 53(6):3373–3388, 2015.

    * Model (paper §II): Yh = Z B M + Nh, Ym = R Z + Nm; Z = E X with E a ``subspace_dim``-
      dimensional basis of the HSI's spectral subspace (§III-A; SVD here — the paper also offers
      VCA endmembers, not implemented).
    * Estimate (§III, Appendix): the minimiser of ½‖Yh − EXBM‖² + (λ_m/2)‖Ym − REX‖²
      + λ_φ·VTV(X), by ADMM/SALSA — see :func:`hysure_fuse`.
    * Degradation: the problem's PSF and SRF when given (known setting); otherwise estimated by
      :func:`estimate_degradation` (§IV) and returned in ``Fused.psf`` / ``Fused.srf``.

    Defaults follow the authors' experiments and published demo settings: subspace dimension
    10, λ_φ = 5·10⁻⁴, λ_m = 1, ADMM μ = 0.05, 200 iterations. The data are expected in
    reflectance-like units (the paper normalises its images to a maximum of 1), since λ_φ is
    absolute. Departures, each a solver detail that leaves the optimisation problem unchanged or
    only removes a modelling artefact:

    * ``init="interpolated"``: ADMM starts from the projected bicubic upsampling instead of
      zeros. The problem is convex, so the limit is the same; after the paper's 200 iterations
      this start is markedly closer to it (on a 128×128 ×8 synthetic pair: 46.3 dB vs 44.8 dB,
      against 47.4 dB after 1000 iterations).
    * ``boundary="unknown"``: no circular wrap-around at the image borders (see
      :func:`hysure_fuse`).
    * The estimator's weights λ_R, λ_B are unit-free (relative to the data's energy) and
      non-negativity is imposed on both responses; see :func:`estimate_degradation`. The
      defaults (10⁻³ each) were chosen on simulated pairs, not taken from the paper, whose
      λ_R = λ_B = 10 are absolute sums for its own image sizes.
    """

    name = "hysure"
    family = "linear"
    blind = True  # estimates the PSF and SRF when they are not given
    resources = Resources(mem_mb=2000, runtime_min=30, threads=2)
    citation = ("M. Simões, J. Bioucas-Dias, L. B. Almeida, J. Chanussot, IEEE TGRS "
                "53(6):3373-3388, 2015")
    licence = "BSD-3-Clause (hmifbench)"

    @dataclass
    class Params:
        subspace_dim: int = param(10, "dimension of the spectral subspace (the paper's L_s); "
                                      "capped at the number of HSI bands")
        lambda_phi: float = param(5e-4, "weight λ_φ of the vector total variation")
        lambda_m: float = param(1.0, "weight λ_m of the MSI data term relative to the HSI one")
        mu: float = param(0.05, "ADMM penalty parameter μ")
        iterations: int = param(200, "ADMM iterations")
        init: Literal["zeros", "interpolated"] = param(
            "interpolated", "ADMM start: the bicubic upsampling projected on the subspace, or "
                            "zeros (the authors' code); the optimum is the same, the former is "
                            "closer to it after a fixed number of iterations")
        boundary: Literal["unknown", "periodic"] = param(
            "unknown", "'unknown': data-free margin around the image (no FFT wrap-around); "
                       "'periodic': the paper's circular model")
        psf_size: Optional[int] = param(None, "side of the estimated PSF (blind setting); "
                                              "null = 2·scale + 1")
        lambda_r: float = param(1e-3, "relative spectral smoothness weight of the SRF estimate")
        lambda_b: float = param(1e-3, "relative spatial smoothness weight of the PSF estimate")
        estimator_alternations: int = param(3, "PSF/SRF refinement rounds of the estimator")

    @classmethod
    def quick_params(cls) -> dict:
        return {"iterations": 20}

    @classmethod
    def validate_params(cls, p):
        if p.subspace_dim < 1:
            raise InputError(f"parameter 'subspace_dim' must be >= 1, got {p.subspace_dim}")
        for name in ("lambda_phi", "lambda_r", "lambda_b"):
            if not getattr(p, name) >= 0:
                raise InputError(f"parameter {name!r} must be >= 0, got {getattr(p, name)}")
        for name in ("lambda_m", "mu"):
            if not getattr(p, name) > 0:
                raise InputError(f"parameter {name!r} must be > 0, got {getattr(p, name)}")
        if p.iterations < 1:
            raise InputError(f"parameter 'iterations' must be >= 1, got {p.iterations}")
        if p.psf_size is not None and p.psf_size < 1:
            raise InputError(f"parameter 'psf_size' must be >= 1 or null, got {p.psf_size}")
        if p.estimator_alternations < 1:
            raise InputError("parameter 'estimator_alternations' must be >= 1, got "
                             f"{p.estimator_alternations}")
        if p.init not in ("zeros", "interpolated"):
            raise InputError(f"parameter 'init' must be 'zeros' or 'interpolated', got {p.init!r}")
        if p.boundary not in ("unknown", "periodic"):
            raise InputError(f"parameter 'boundary' must be 'unknown' or 'periodic', got {p.boundary!r}")

    def fuse(self, problem: FusionProblem, *, state=None, seed=0, device="auto", progress=None):
        p = self.params
        psf, srf = problem.psf, problem.srf
        estimated = [n for n, v in (("psf", psf), ("srf", srf)) if v is None]
        if estimated:
            psf, srf = estimate_degradation(
                problem.lr_hsi, problem.hr_msi, problem.scale, p.psf_size, offset=problem.offset,
                border=problem.border, lambda_r=p.lambda_r, lambda_b=p.lambda_b, psf=psf, srf=srf,
                alternations=p.estimator_alternations)
        out, info = hysure_fuse(problem.lr_hsi, problem.hr_msi, psf, srf, problem.scale,
                                problem.offset, subspace_dim=p.subspace_dim,
                                lambda_phi=p.lambda_phi, lambda_m=p.lambda_m, mu=p.mu,
                                iterations=p.iterations, boundary=p.boundary, init=p.init,
                                progress=progress)
        info["estimated"] = estimated
        return Fused(out, psf=psf if "psf" in estimated else None,
                     srf=srf if "srf" in estimated else None,
                     iterations=p.iterations, extras=info)
