"""``cnmf``: coupled non-negative matrix factorisation unmixing (Yokoya et al. 2012).

Also holds the pieces CNMF needs and others may reuse: VCA endmember extraction, the HFC
virtual-dimensionality estimate, and the NNLS estimate of the relative SRF (with a Gaussian
PSF width fitted alongside it in the blind setting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hmifbench.errors import InputError
from hmifbench.method import Fused, FusionProblem, Method, Resources, param


# --------------------------------------------------------------------------------------------
# Endmember extraction and dimensionality
# --------------------------------------------------------------------------------------------

def _top_eigvecs(C: np.ndarray, k: int) -> np.ndarray:
    w, V = np.linalg.eigh(C)
    return V[:, np.argsort(w)[::-1][:k]]


def vca(Y: np.ndarray, p: int, rng: np.random.Generator) -> np.ndarray:
    """Vertex component analysis: indices of ``p`` pixels (columns of Y) that are endmembers.

    J. M. P. Nascimento, J. M. Bioucas-Dias, "Vertex component analysis: a fast algorithm to
    unmix hyperspectral data", IEEE TGRS 43(4):898–910, 2005. Data above the SNR threshold
    ``15 + 10·log10(p)`` dB are projected on the p-dimensional signal subspace and
    perspective-projected (``y / uᵀy``); noisier data are projected on p − 1 principal
    components and lifted by a constant coordinate. Then p times: draw a random direction,
    make it orthogonal to the endmembers found so far, and keep the pixel with the largest
    absolute projection on it.

    Parameters
    ----------
    Y : ndarray (bands, pixels)
    p : int
    rng : numpy.random.Generator
        Source of the random directions (the result depends on it).
    """
    L, N = Y.shape
    Y = Y.astype(np.float64)
    mean = Y.mean(axis=1, keepdims=True)
    Yo = Y - mean
    Ud = _top_eigvecs(Yo @ Yo.T / N, p)
    xp = Ud.T @ Yo
    p_y = np.sum(Y**2) / N
    p_x = np.sum(xp**2) / N + float(np.sum(mean**2))
    signal, noise = p_x - p / L * p_y, p_y - p_x
    snr = np.inf if noise <= 1e-12 * p_y else 10 * math.log10(max(signal, 1e-300) / noise)
    if snr > 15 + 10 * math.log10(p):
        Ud = _top_eigvecs(Y @ Y.T / N, p)
        X = Ud.T @ Y
        u = X.mean(axis=1)
        denom = u @ X
        denom = np.where(np.abs(denom) < 1e-12, 1e-12, denom)
        Z = X / denom
    else:
        Ud = _top_eigvecs(Yo @ Yo.T / N, p - 1)
        X = Ud.T @ Yo
        c = np.sqrt(np.max(np.sum(X**2, axis=0)))
        Z = np.vstack([X, np.full((1, N), c)])
    A = np.zeros((p, p))
    A[-1, 0] = 1.0
    idx = np.zeros(p, dtype=int)
    for i in range(p):
        w = rng.standard_normal(p)
        f = w - A @ (np.linalg.pinv(A) @ w)
        f /= np.linalg.norm(f) + 1e-300
        idx[i] = int(np.argmax(np.abs(f @ Z)))
        A[:, i] = Z[:, idx[i]]
    return idx


def virtual_dimensionality(Y: np.ndarray, false_alarm: float = 5e-2) -> int:
    """Harsanyi–Farrand–Chang estimate of the number of spectrally distinct signatures.

    C.-I Chang, Q. Du, "Estimation of number of spectrally distinct signal sources in
    hyperspectral imagery", IEEE TGRS 42(3):608–619, 2004: count the eigenvalues of the
    correlation matrix that exceed those of the covariance matrix by more than a
    Neyman–Pearson threshold at false-alarm rate ``false_alarm``.
    """
    from scipy.stats import norm

    L, N = Y.shape
    Y = Y.astype(np.float64)
    lam_r = np.sort(np.linalg.eigvalsh(Y @ Y.T / N))[::-1]
    Yo = Y - Y.mean(axis=1, keepdims=True)
    lam_k = np.sort(np.linalg.eigvalsh(Yo @ Yo.T / N))[::-1]
    sigma = np.sqrt(2 * (lam_r**2 + lam_k**2) / N)
    tau = sigma * norm.ppf(1 - false_alarm)
    return int(np.sum(lam_r - lam_k > tau))


# --------------------------------------------------------------------------------------------
# Degradation estimates (blind setting)
# --------------------------------------------------------------------------------------------

def estimate_srf_nnls(lr_hsi: np.ndarray, lr_msi: np.ndarray) -> tuple[np.ndarray, float]:
    """Relative SRF by non-negative least squares, one MSI band at a time.

    N. Yokoya, N. Mayumi, A. Iwasaki, "Cross-calibration for data fusion of EO-1/Hyperion and
    Terra/ASTER", IEEE JSTARS 6(2):419–426, 2013: regress each spatially degraded MSI band on
    the LR-HSI bands with non-negative weights.

    Returns
    -------
    srf : ndarray (b, B), not normalised (gains are kept)
    residual : float
        Root-mean-square misfit of the regression.
    """
    from scipy.optimize import nnls

    B, b = lr_hsi.shape[2], lr_msi.shape[2]
    A = lr_hsi.reshape(-1, B).astype(np.float64)
    M = lr_msi.reshape(-1, b).astype(np.float64)
    R = np.zeros((b, B))
    sq = 0.0
    for k in range(b):
        R[k], rnorm = nnls(A, M[:, k], maxiter=50 * B)
        sq += rnorm**2
    return R, math.sqrt(sq / M.size)


def estimate_psf_and_srf(problem: FusionProblem, n_sigmas: int = 23):
    """Gaussian PSF width and relative SRF that best explain ``R·Y_h ≈ degrade(Y_m)``.

    For every σ on a grid from 0.1·s to 1.2·s, the HR-MSI is degraded with an isotropic
    Gaussian PSF of that width (size the odd integer ≥ 6σ) and the SRF fitted by
    :func:`estimate_srf_nnls`; the σ with the smallest misfit wins. (Our addition for the
    blind setting: the CNMF paper assumes the spatial response known.) A PSF already given
    in the problem is used as is, and a given SRF too.

    Returns
    -------
    psf : ndarray (k, k); srf : ndarray (b, B) (relative, not normalised); sigma : float or None
    """
    from hmifbench.observation import gaussian_psf, spatial_degrade

    s = problem.scale
    if problem.psf is not None:
        candidates = [(None, problem.psf)]
    else:
        candidates = []
        for sigma in np.linspace(0.1, 1.2, n_sigmas) * s:
            candidates.append((float(sigma), gaussian_psf(2 * math.ceil(3 * sigma) + 1, sigma)))
    best = None
    for sigma, psf in candidates:
        lr_msi = spatial_degrade(problem.hr_msi, psf, s, problem.offset, problem.border)
        if problem.srf is not None:
            R = problem.srf
            pred = problem.lr_hsi.reshape(-1, problem.bands).astype(np.float64) @ R.T
            err = float(np.sqrt(np.mean((pred - lr_msi.reshape(pred.shape)) ** 2)))
        else:
            R, err = estimate_srf_nnls(problem.lr_hsi, lr_msi)
        if best is None or err < best[0]:
            best = (err, psf, R, sigma)
    return best[1], best[2], best[3]


# --------------------------------------------------------------------------------------------
# Multiplicative-update NMF with the sum-to-one row (the inner loops of CNMF)
# --------------------------------------------------------------------------------------------

_TINY = 1e-12


def _cost(Y, W, H, n):
    """Squared error over the first n rows (the data bands; the sum-to-one row is excluded),
    accumulated in double precision."""
    r = (W[:n] @ H - Y[:n]).astype(np.float64).ravel()
    return float(r @ r)


def _h_step(W, H, WtY, WtW):
    """Lee–Seung update ``H ⊙ (WᵀY) / (WᵀW·H)``, as a new array (one allocation)."""
    d = WtW @ H
    np.maximum(d, _TINY, out=d)
    np.divide(WtY, d, out=d)
    return np.multiply(d, H, out=d)


def _w_step(Y, W, H, n):
    """Lee–Seung update of the first n rows of W (the sum-to-one row stays δ), as a new array."""
    new = W.copy()
    new[:n] *= (Y[:n] @ H.T) / np.maximum(W[:n] @ (H @ H.T), _TINY)
    return new


def _unmix(Y, W, H, n, first, update_w, update_h, max_iter, tol):
    """One CNMF unmixing stage (Yokoya et al. 2012, Sec. III): up to ``max_iter`` updates
    of ``first`` alone ("h" or "w"), then up to ``max_iter − 1`` alternating updates of the
    factors allowed by ``update_w``/``update_h``. Each phase stops when the relative decrease
    of the cost falls below ``tol``, keeping the previous iterate. Returns (W, H, iterations).

    Updates build new arrays, so keeping the previous iterate costs no copy; while W is fixed,
    WᵀY and WᵀW are computed once.
    """
    def fixed_w_products(W):
        return W.T @ Y, W.T @ W

    its = 0
    cost0 = _cost(Y, W, H, n)
    WtY, WtW = fixed_w_products(W)
    for q in range(max_iter):
        if first == "h":
            W_new, H_new = W, _h_step(W, H, WtY, WtW)
        else:
            W_new, H_new = _w_step(Y, W, H, n), H
        its += 1
        cost = _cost(Y, W_new, H_new, n)
        if q > 0 and (cost0 - cost) / max(cost, _TINY) < tol:
            break
        W, H, cost0 = W_new, H_new, cost
    if not (update_w or update_h):
        return W, H, its
    cost0 = _cost(Y, W, H, n)
    WtY, WtW = fixed_w_products(W)
    order = ("w", "h") if first == "h" else ("h", "w")
    for _ in range(max_iter - 1):
        W_new, H_new = W, H
        for factor in order:
            if factor == "w" and update_w:
                W_new = _w_step(Y, W_new, H_new, n)
                WtY, WtW = fixed_w_products(W_new)
            elif factor == "h" and update_h:
                H_new = _h_step(W_new, H_new, WtY, WtW)
        its += 1
        cost = _cost(Y, W_new, H_new, n)
        if (cost0 - cost) / max(cost, _TINY) < tol:
            break
        W, H, cost0 = W_new, H_new, cost
    return W, H, its


# --------------------------------------------------------------------------------------------
# The method
# --------------------------------------------------------------------------------------------

class CNMF(Method):
    """CNMF: coupled non-negative matrix factorisation unmixing for HS–MS fusion.

    N. Yokoya, T. Yairi, A. Iwasaki, "Coupled nonnegative matrix factorization unmixing for
    hyperspectral and multispectral data fusion", IEEE TGRS 50(2):528–537, 2012.

    Model (the paper's Sec. III): the HR-HSI is ``X = W·H`` with non-negative endmembers W
    (B × M) and abundances H (M × N); the LR-HSI is ``Y_h ≈ W·H_h`` with ``H_h = H·S`` (S: the
    PSF and decimation), the HR-MSI ``Y_m ≈ W_m·H`` with ``W_m = R·W``. Both NMFs are solved
    by Lee–Seung multiplicative updates, each data matrix and endmember matrix augmented by
    a row of δ, which softly enforces abundances summing to one:

    1. W from VCA on the LR-HSI, H_h = 1/M; unmix the LR-HSI (H_h alone, then W and H_h).
    2. W_m = R·W; H initialised by bicubic upsampling of H_h (negatives set to 0); unmix the
       HR-MSI (H alone, then W_m — only when the MSI has more than 3 bands — and H).
    3. For each outer iteration: H_h = degrade(H) with the PSF; unmix the LR-HSI (W alone,
       then H_h — only with more than 3 MSI bands — and W); if more outer iterations follow,
       W_m = R·W and unmix the HR-MSI again; stop early when the LR-HSI and HR-MSI costs both
       decrease by less than ``outer_tol``.
    4. X = W·H.

    Defaults follow the authors' released code (HSMSFusionToolbox version, Yokoya,
    Grohnfeldt, Chanussot, IEEE GRSM 5(2), 2017): M = max(min(30, B), VD(P_fa = 0.05)),
    200 inner and 1 outer iteration, inner tolerance 1e-8, outer tolerance 1e-2,
    δ = 2·sqrt(mean(Y_m)/0.7455)/b³.

    Degradation. The known PSF and SRF are used when given. Otherwise (blind) the SRF is
    estimated by NNLS regression of the degraded MSI on the LR-HSI (Yokoya et al. 2013, as in
    the authors' code) and the PSF as the isotropic Gaussian whose width minimises that
    regression's misfit (our addition; the paper assumes the spatial response known).
    Both estimates are returned in :class:`Fused` (SRF rows normalised to sum 1).
    """

    name = "cnmf"
    family = "linear"
    blind = True
    needs_psf = False
    needs_srf = False
    resources = Resources(mem_mb=2000, runtime_min=20)
    citation = "N. Yokoya, T. Yairi, A. Iwasaki, IEEE TGRS 50(2):528-537, 2012"
    licence = "BSD-3-Clause (hmifbench)"

    @dataclass
    class Params:
        endmembers: int = param(30, "M; the number used is max(min(M, bands), VD), capped at the "
                                    "number of LR pixels")
        vd_false_alarm: float = param(5e-2, "false-alarm rate of the HFC virtual dimensionality")
        inner_iterations: int = param(200, "maximum multiplicative updates per unmixing phase")
        outer_iterations: int = param(1, "maximum coupled (outer) iterations")
        inner_tol: float = param(1e-8, "relative cost decrease that stops an unmixing phase")
        outer_tol: float = param(1e-2, "relative cost decrease that stops the outer loop")
        sum_to_one: float | None = param(None, "δ, weight of the sum-to-one row; None: "
                                               "2·sqrt(mean(Y_m)/0.7455)/b³")

    @classmethod
    def quick_params(cls) -> dict:
        return {"endmembers": 5, "inner_iterations": 20}

    @classmethod
    def validate_params(cls, p):
        for name in ("endmembers", "inner_iterations", "outer_iterations"):
            if getattr(p, name) < 1:
                raise InputError(f"parameter {name!r} must be >= 1, got {getattr(p, name)}")
        if not 0 < p.vd_false_alarm < 1:
            raise InputError(f"parameter 'vd_false_alarm' must be in (0, 1), got {p.vd_false_alarm}")
        for name in ("inner_tol", "outer_tol"):
            if not getattr(p, name) >= 0:
                raise InputError(f"parameter {name!r} must be >= 0, got {getattr(p, name)}")
        if p.sum_to_one is not None and not p.sum_to_one > 0:
            raise InputError(f"parameter 'sum_to_one' must be > 0 or None, got {p.sum_to_one}")

    def fuse(self, problem: FusionProblem, *, state=None, seed=0, device="auto", progress=None):
        from hmifbench.observation import upsample_bicubic
        from hmifbench.observation import spatial_degrade

        self.check_problem(problem)
        prm = self.params
        rng = np.random.default_rng(seed)
        s, off = problem.scale, problem.offset
        h, w, B = problem.lr_hsi.shape
        H_, W_, b = problem.hr_msi.shape

        if problem.known:
            psf, R, sigma = problem.psf, problem.srf, None
        else:
            psf, R, sigma = estimate_psf_and_srf(problem)
        if not np.any(R.sum(axis=1) > 0):
            raise InputError("the estimated SRF is zero: the HR-MSI does not correlate with "
                             "the LR-HSI")

        yh = np.maximum(problem.lr_hsi.reshape(-1, B).T.astype(np.float64), 0.0)   # (B, n)
        ym = np.maximum(problem.hr_msi.reshape(-1, b).T.astype(np.float32), 0.0)   # (b, N)
        vd = virtual_dimensionality(yh, prm.vd_false_alarm)
        M = max(min(prm.endmembers, B), vd)
        M = max(1, min(M, h * w))
        delta = (prm.sum_to_one if prm.sum_to_one is not None
                 else 2.0 * math.sqrt(float(ym.mean()) / 0.7455) / b**3)
        update_msi_w = b > 3  # the authors' code keeps W_m = R·W fixed for RGB-like MSIs

        # 1. LR-HSI unmixing, VCA start.
        Wh = np.vstack([yh[:, vca(yh, M, rng)], np.full((1, M), delta)])
        Hh = np.full((M, h * w), 1.0 / M)
        Yh = np.vstack([yh, np.full((1, h * w), delta)])
        Wh, Hh, its = _unmix(Yh, Wh, Hh, B, "h", True, True, prm.inner_iterations, prm.inner_tol)
        total = its

        # 2. HR-MSI unmixing, abundances from the upsampled LR ones.
        Ym = np.vstack([ym, np.full((1, H_ * W_), delta, dtype=np.float32)])
        Wm = np.vstack([R @ Wh[:B], np.full((1, M), delta)]).astype(np.float32)
        Hm = upsample_bicubic(Hh.T.reshape(h, w, M), s, off).reshape(-1, M).T
        Hm = np.ascontiguousarray(np.maximum(Hm, 0.0), dtype=np.float32)
        Wm, Hm, its = _unmix(Ym, Wm, Hm, b, "h", update_msi_w, True,
                             prm.inner_iterations, prm.inner_tol)
        total += its
        cost_h, cost_m = _cost(Yh, Wh, Hh, B), _cost(Ym, Wm, Hm, b)

        # 3. Coupled iterations.
        outer = 0
        for i in range(1, prm.outer_iterations + 1):
            outer = i
            Hh = spatial_degrade(Hm.T.reshape(H_, W_, M), psf, s, off,
                                 problem.border).reshape(-1, M).T.astype(np.float64)
            Hh = np.maximum(Hh, 0.0)
            Wh, Hh, its = _unmix(Yh, Wh, Hh, B, "w", True, update_msi_w,
                                 prm.inner_iterations, prm.inner_tol)
            total += its
            new_h = _cost(Yh, Wh, Hh, B)
            if i == prm.outer_iterations:
                break
            Wm2 = Wm.copy()
            Wm2[:b] = (R @ Wh[:B]).astype(np.float32)
            Wm2, Hm2, its = _unmix(Ym, Wm2, Hm.copy(), b, "h", update_msi_w, True,
                                   prm.inner_iterations, prm.inner_tol)
            total += its
            new_m = _cost(Ym, Wm2, Hm2, b)
            improved = ((cost_h - new_h) / max(cost_h, _TINY) > prm.outer_tol
                        and (cost_m - new_m) / max(cost_m, _TINY) > prm.outer_tol)
            if not improved:
                break
            Wm, Hm, cost_h, cost_m = Wm2, Hm2, new_h, new_m

        x = (Wh[:B].astype(np.float32) @ Hm).T.reshape(H_, W_, B)
        estimated = not problem.known
        srf_out = None
        if estimated and problem.srf is None:
            sums = R.sum(axis=1, keepdims=True)
            srf_out = R / np.where(sums > 0, sums, 1.0)
        return Fused(x, psf=psf if estimated and problem.psf is None else None, srf=srf_out,
                     iterations=total,
                     extras={"endmembers": int(M), "virtual_dimensionality": int(vd),
                             "sum_to_one": float(delta), "outer_iterations": outer,
                             "psf_sigma": sigma,
                             "degradation": "estimated" if estimated else "given"})
