"""How well a blind method estimated the degradation: PSF, SRF and MSI gain/offset errors
against the truth."""

from __future__ import annotations

import math

import numpy as np

from hmifbench.errors import InputError


def _kernel(h, name: str) -> np.ndarray:
    k = np.asarray(h, dtype=np.float64)
    if k.ndim != 2 or k.size == 0:
        raise InputError(f"{name}: a PSF must be a non-empty 2-D kernel, got shape {k.shape}")
    if not np.isfinite(k).all():
        raise InputError(f"{name}: PSF contains NaN or infinite values")
    total = k.sum()
    if not total > 0:
        raise InputError(f"{name}: PSF must have a positive sum to be normalised, got {total:.6g}")
    return k / total


def _align(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad two kernels to a common shape with their centres ((k − 1)//2, the convention of
    hmifbench.observation) on the same pixel."""
    ca = [(n - 1) // 2 for n in a.shape]
    cb = [(n - 1) // 2 for n in b.shape]
    before = [max(i, j) for i, j in zip(ca, cb)]
    after = [max(n - 1 - i, m - 1 - j) for n, i, m, j in zip(a.shape, ca, b.shape, cb)]

    def pad(k, c):
        return np.pad(k, [(bf - ci, af - (n - 1 - ci)) for bf, af, n, ci in zip(before, after, k.shape, c)])

    return pad(a, ca), pad(b, cb)


def _moments(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroid (row, col) relative to the kernel centre, and the 2×2 second-moment matrix."""
    r = np.arange(k.shape[0]) - (k.shape[0] - 1) // 2
    c = np.arange(k.shape[1]) - (k.shape[1] - 1) // 2
    rr, cc = np.meshgrid(r, c, indexing="ij")
    mu = np.array([np.sum(k * rr), np.sum(k * cc)])
    dr, dc = rr - mu[0], cc - mu[1]
    cov = np.array([[np.sum(k * dr * dr), np.sum(k * dr * dc)],
                    [np.sum(k * dr * dc), np.sum(k * dc * dc)]])
    return mu, cov


def psf_error(estimated, true) -> dict[str, float]:
    """Compare an estimated PSF with the true one (both 2-D kernels on the HR grid).

    Both are divided by their sum, then zero-padded to a common shape with their centres
    ``((k0 − 1)//2, (k1 − 1)//2)`` aligned (the kernel convention of
    :mod:`hmifbench.observation`), so kernels of different sizes compare.

    Returns
    -------
    dict
        ``rmse`` — root mean square of the difference over the common support (which depends
        on the padding; ``l1`` does not); ``rel_frobenius`` — ‖ĥ − h‖_F / ‖h‖_F on the common
        support (zero padding changes neither norm, so it does not depend on the padding; 0 is
        exact, 1 is as far off as a zero kernel); ``l1`` — Σ|ĥ − h| ∈ [0, 2] for non-negative
        kernels; ``max_abs``; ``sigma_estimated``, ``sigma_true`` — the effective width
        σ = sqrt(trace(Σ)/2) of each kernel's second-moment matrix Σ about its centroid
        (pixels; for an isotropic Gaussian it is its σ); ``sigma_error`` =
        σ_estimated − σ_true; ``centroid_shift`` — distance between the two centroids, pixels.
    """
    e = _kernel(estimated, "estimated")
    t = _kernel(true, "true")
    ea, ta = _align(e, t)
    diff = ea - ta
    mu_e, cov_e = _moments(e)
    mu_t, cov_t = _moments(t)
    s_e = math.sqrt(max(np.trace(cov_e) / 2, 0.0))
    s_t = math.sqrt(max(np.trace(cov_t) / 2, 0.0))
    return {
        "rmse": float(np.sqrt(np.mean(diff ** 2))),
        "rel_frobenius": float(np.linalg.norm(diff) / np.linalg.norm(ta)),
        "l1": float(np.abs(diff).sum()),
        "max_abs": float(np.abs(diff).max()),
        "sigma_estimated": s_e,
        "sigma_true": s_t,
        "sigma_error": s_e - s_t,
        "centroid_shift": float(np.hypot(*(mu_e - mu_t))),
    }


def srf_error(estimated, true, normalise: bool = True) -> dict:
    """Compare an estimated SRF matrix with the true one, both (msi_bands × hsi_bands).

    With ``normalise`` (default) every row is first divided by its sum — the convention of
    :mod:`hmifbench.observation` (rows sum to 1) — so an SRF estimated up to a per-band gain
    is not penalised for it.

    Returns
    -------
    dict
        ``rmse_per_band`` (list, one per MSI band: sqrt(mean_k (R̂_jk − R_jk)²)),
        ``sam_per_band_deg`` (list: angle between the response vectors, degrees),
        ``rmse_mean``, ``sam_mean_deg`` (means over MSI bands), ``rmse`` (over the whole matrix),
        ``rel_frobenius`` — ‖R̂ − R‖_F / ‖R‖_F over the whole (normalised) matrix.
    """
    e = np.asarray(estimated, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    for a, name in ((e, "estimated"), (t, "true")):
        if a.ndim != 2:
            raise InputError(f"{name}: an SRF must be a (msi_bands × hsi_bands) matrix, got shape {a.shape}")
        if not np.isfinite(a).all():
            raise InputError(f"{name}: SRF contains NaN or infinite values")
    if e.shape != t.shape:
        raise InputError(f"SRF shape mismatch: estimated {e.shape} vs true {t.shape}")
    if normalise:
        for a, name in ((e, "estimated"), (t, "true")):
            sums = a.sum(axis=1, keepdims=True)
            bad = np.flatnonzero(sums[:, 0] == 0)
            if bad.size:
                raise InputError(f"{name}: SRF row(s) {bad.tolist()} sum to 0 and cannot be normalised")
        e = e / e.sum(axis=1, keepdims=True)
        t = t / t.sum(axis=1, keepdims=True)
    rmse_b = np.sqrt(np.mean((e - t) ** 2, axis=1))
    ne = np.linalg.norm(e, axis=1)
    nt = np.linalg.norm(t, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = e / ne[:, None]
        b = t / nt[:, None]
        d = np.linalg.norm(a - b, axis=1)
        s = np.linalg.norm(a + b, axis=1)
        angle = np.degrees(2 * np.arctan2(d, s))      # NaN for a zero row
    return {
        "rmse_per_band": rmse_b.tolist(),
        "sam_per_band_deg": angle.tolist(),
        "rmse_mean": float(np.mean(rmse_b)),
        "sam_mean_deg": float(np.mean(angle)),
        "rmse": float(np.sqrt(np.mean((e - t) ** 2))),
        "rel_frobenius": float(np.linalg.norm(e - t) / np.linalg.norm(t)),
    }


def radiometry_error(gain, offset, true_gain=None, true_offset=None) -> dict:
    """Compare estimated per-band MSI gains and offsets with the true ones.

    The radiometric model is ``Ym_j = g_j · (X · Rᵀ)_j + o_j`` (see
    :mod:`hmifbench.observation`); a true gain of None means 1 and a true offset of None 0
    (the plain model).

    Returns
    -------
    dict
        ``gain_rel_error_per_band`` (list: (ĝ_j − g_j) / g_j), ``gain_max_rel_error``
        (max_j |ĝ_j − g_j| / g_j), ``offset_error_per_band`` (list: ô_j − o_j, in the MSI's
        units), ``offset_max_abs_error`` (max_j |ô_j − o_j|).
    """
    g = np.asarray(gain, dtype=np.float64).reshape(-1)
    o = np.asarray(offset, dtype=np.float64).reshape(-1)
    tg = np.ones_like(g) if true_gain is None else np.asarray(true_gain, dtype=np.float64).reshape(-1)
    to = np.zeros_like(o) if true_offset is None else np.asarray(true_offset, dtype=np.float64).reshape(-1)
    if not g.size == o.size == tg.size == to.size:
        raise InputError(f"radiometry shapes differ: {g.size} gains, {o.size} offsets, "
                         f"{tg.size} true gains, {to.size} true offsets")
    for a, name in ((g, "estimated gain"), (o, "estimated offset"), (tg, "true gain"), (to, "true offset")):
        if not np.isfinite(a).all():
            raise InputError(f"{name} contains NaN or infinite values")
    if (tg <= 0).any():
        raise InputError(f"true gains must be > 0, got {tg.tolist()}")
    rel = (g - tg) / tg
    diff = o - to
    return {
        "gain_rel_error_per_band": rel.tolist(),
        "gain_max_rel_error": float(np.abs(rel).max()),
        "offset_error_per_band": diff.tolist(),
        "offset_max_abs_error": float(np.abs(diff).max()),
    }
