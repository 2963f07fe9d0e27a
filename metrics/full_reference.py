"""Full-reference quality indices of a fused HR-HSI against the ground truth (canonical forms).

All functions take ``reference`` (ground truth X) and ``estimate`` (fused Y), arrays or
:class:`hmifbench.Cube` of shape (rows, cols, bands), and return a Python float. Statistics are
accumulated in float64 (float32 inputs are filtered in float32 after per-band centring; see
docs/metrics.md). ``crop`` removes that many pixels from every border of both images first.

Notation: B bands, N = rows·cols pixels, μ_b the mean of reference band b,
MSE_b = (1/N) Σ_p (Y_b(p) − X_b(p))².
"""

from __future__ import annotations

import math

import numpy as np

from hmifbench.errors import InputError

from ._checks import check_data_range, check_pair, check_scale
from ._core import BandMoments, WindowSpec, band_moments, spectral_angles, windowed_pass
from ._windows import box_kernel, gaussian_kernel

#: Wang et al. (2004) SSIM window and constants.
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5          # radius int(3.5·1.5 + 0.5) = 5 → an 11×11 window
SSIM_K1, SSIM_K2 = 0.01, 0.03
#: Side of the UIQI sliding window (Vivone et al. 2015 "Q", HySure's quality_assessment).
UIQI_WINDOW = 32


# --------------------------------------------------------------------------- specs

def ssim_spec(data_range: float = 1.0) -> WindowSpec:
    """Wang et al. (2004): 11×11 Gaussian (σ = 1.5), K1 = 0.01, K2 = 0.03, population covariance."""
    return WindowSpec(kernel=gaussian_kernel(SSIM_SIGMA, SSIM_TRUNCATE),
                      c1=(SSIM_K1 * data_range) ** 2, c2=(SSIM_K2 * data_range) ** 2)


def uiqi_spec(window: int) -> WindowSpec:
    """Wang & Bovik (2002) Q over a ``window``×``window`` uniform sliding window."""
    return WindowSpec(kernel=box_kernel(window))


def _check_window(shape, side: int, what: str) -> None:
    if shape[0] < side or shape[1] < side:
        raise InputError(f"{what} needs images of at least {side}×{side} pixels "
                         f"(after cropping), got {shape[0]}×{shape[1]}")


def effective_uiqi_window(shape, window: int = UIQI_WINDOW) -> int:
    """The UIQI window used for an image of ``shape``: ``window``, or the shorter image side if
    that is smaller (a single window then covers the image along that axis)."""
    if int(window) != window or window < 2:
        raise InputError(f"UIQI window must be an integer >= 2, got {window!r}")
    return int(min(window, shape[0], shape[1]))


# ------------------------------------------------------------- formulas on moments

def psnr_from_mse(mse: np.ndarray, peak) -> float:
    """Mean over bands of 10·log10(peak_b² / MSE_b); a band with MSE_b = 0 gives +inf."""
    mse = np.asarray(mse, dtype=np.float64)
    peak = np.broadcast_to(np.asarray(peak, dtype=np.float64), mse.shape)
    per_band = np.full(mse.shape, np.inf)
    pos = mse > 0
    per_band[pos] = 10.0 * np.log10(peak[pos] ** 2 / mse[pos])
    return float(np.mean(per_band)) if np.isfinite(per_band).all() else _mean_with_inf(per_band)


def _mean_with_inf(values: np.ndarray) -> float:
    # np.mean of [inf, x] is inf without warning, but [inf, -inf] would warn; PSNR peaks are
    # positive, so only +inf can appear (-inf needs peak 0, which check_data_range forbids).
    return math.inf if np.isposinf(values).any() else float(np.mean(values))


def ergas_from_mse(mse: np.ndarray, mu: np.ndarray, scale: float, n_div: float | None = None) -> float:
    """(100/s)·sqrt((1/n_div)·Σ_b MSE_b/μ_b²), n_div = B by default (Wald 2000)."""
    mse = np.asarray(mse, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    zero = np.flatnonzero(mu == 0)
    if zero.size:
        raise InputError(f"ERGAS is undefined: band(s) {zero.tolist()} of the normalising image "
                         "have mean 0")
    n_div = mse.size if n_div is None else n_div
    return float(100.0 / scale * math.sqrt(np.sum(mse / mu ** 2) / n_div))


def cc_from_moments(m: BandMoments) -> float:
    """Mean over bands of Pearson's r; bands where either image is constant are left out
    (r is undefined there); NaN when every band is constant."""
    den = np.sqrt(m.var_x * m.var_y)
    ok = den > 0
    if not ok.any():
        return math.nan
    return float(np.mean(np.clip(m.cov_xy[ok] / den[ok], -1.0, 1.0)))


# ------------------------------------------------------------------- public metrics

def psnr(reference, estimate, data_range: float = 1.0, crop: int = 0) -> float:
    """Peak signal-to-noise ratio, dB: per band with a declared peak, averaged over bands.

    ``PSNR = (1/B) Σ_b 10·log10(L² / MSE_b)`` with L = ``data_range``. A band reconstructed
    exactly has PSNR +inf, and so has the mean (returned without a warning).

    References
    ----------
    Per-band averaging as in Yokoya, Grohnfeldt & Chanussot, IEEE GRSM 5(2), 2017, Table 2
    (there with L = max of the reference band; the ``yokoya`` profile does that).
    """
    L = check_data_range(data_range)
    x, y = check_pair(reference, estimate, crop)
    return psnr_from_mse(band_moments(x, y).mse, L)


def rmse(reference, estimate, crop: int = 0) -> float:
    """Root mean squared error over all pixels and bands, in data units: sqrt(mean_b MSE_b)."""
    x, y = check_pair(reference, estimate, crop)
    return float(math.sqrt(np.mean(band_moments(x, y).mse)))


def ergas(reference, estimate, scale, crop: int = 0) -> float:
    """ERGAS (relative dimensionless global error in synthesis), Wald (2000) eq. 1.

    ``ERGAS = (100 / s) · sqrt( (1/B) Σ_b MSE_b / μ_b² )`` with s = ``scale`` the HR/LR
    resolution ratio (e.g. 4 or 8; Wald's h/l is 1/s) and μ_b the mean of reference band b.
    0 is perfect; dimensionless.

    References
    ----------
    L. Wald, "Quality of high resolution synthesised images: is there a simple criterion?",
    Proc. Fusion of Earth Data, 2000, pp. 99–103.
    """
    s = check_scale(scale)
    x, y = check_pair(reference, estimate, crop)
    m = band_moments(x, y)
    return ergas_from_mse(m.mse, m.mean_x, s)


def sam(reference, estimate, crop: int = 0, return_excluded: bool = False):
    """Spectral angle mapper, degrees: the mean over pixels of the angle between the spectra.

    ``SAM = (1/|P|) Σ_{p∈P} arccos(⟨x_p, y_p⟩ / (‖x_p‖‖y_p‖))`` · 180/π, where P are the pixels
    at which both spectra have non-zero norm; the others are excluded (as in Vivone's and
    Yokoya's toolboxes) and their number is returned when ``return_excluded`` is true. NaN if
    every pixel is excluded. Computed as 2·atan2(‖a − b‖, ‖a + b‖) on unit vectors a, b,
    which is the same angle without arccos' loss of precision near 0.

    References
    ----------
    R. H. Yuhas, A. F. H. Goetz, J. W. Boardman, "Discrimination among semi-arid landscape
    endmembers using the spectral angle mapper (SAM) algorithm", JPL Summaries of the 3rd
    Annual Airborne Geoscience Workshop, 1992, pp. 147–149.
    """
    x, y = check_pair(reference, estimate, crop)
    total, valid, excluded = spectral_angles(x, y)
    value = math.degrees(total / valid) if valid else math.nan
    return (value, excluded) if return_excluded else value


def cc(reference, estimate, crop: int = 0) -> float:
    """Cross-correlation: the mean over bands of the Pearson correlation of the two band images.

    Bands where either image is constant are left out (r is undefined there). 1 is perfect.
    """
    x, y = check_pair(reference, estimate, crop)
    return cc_from_moments(band_moments(x, y))


def ssim(reference, estimate, data_range: float = 1.0, crop: int = 0) -> float:
    """Structural similarity (Wang et al. 2004), per band, averaged over bands.

    ``SSIM = (2μxμy + C1)(2σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))`` with local
    statistics under an 11×11 Gaussian window (σ = 1.5, normalised to sum 1), population
    (co)variances, C1 = (0.01·L)², C2 = (0.03·L)², L = ``data_range``. The map is averaged over
    the window positions that lie entirely inside the image ("valid": a 5-pixel border is not
    a window centre), then over bands. This equals
    ``skimage.metrics.structural_similarity(X, Y, channel_axis=-1, data_range=L,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``, which filters with
    reflected borders but then drops the 5-pixel border where they matter.

    References
    ----------
    Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment: from error
    visibility to structural similarity", IEEE TIP 13(4):600–612, 2004, eqs. 13–15 and §III-C.
    """
    L = check_data_range(data_range)
    x, y = check_pair(reference, estimate, crop)
    spec = ssim_spec(L)
    _check_window(x.shape, spec.kernel.size, "SSIM")
    per_band, _ = windowed_pass(x, y, {"ssim": spec}, moments=False)
    return float(np.mean(per_band["ssim"]))


def uiqi(reference, estimate, window: int = UIQI_WINDOW, crop: int = 0) -> float:
    """Universal image quality index Q (Wang & Bovik 2002), per band, averaged over bands.

    ``Q = 4σxy μx μy / ((σx² + σy²)(μx² + μy²))`` over a ``window``×``window`` uniform
    sliding window (stride 1, valid positions only), averaged over positions, then bands.
    Window default 32 as in Vivone et al.'s "Q" and HySure's UIQI (the Wang–Bovik paper
    used 8); if the image is smaller, the window shrinks to the shorter side. Flat windows
    follow Wang & Bovik's code: σx² + σy² = 0 gives 2μxμy/(μx² + μy²); μx² + μy² = 0 gives
    2σxy/(σx² + σy²); both 0 gives 1. Range [−1, 1]; 1 is perfect.

    References
    ----------
    Z. Wang, A. C. Bovik, "A universal image quality index", IEEE SPL 9(3):81–84, 2002, eq. 1.
    G. Vivone et al., "A critical comparison among pansharpening algorithms", IEEE TGRS
    53(5):2565–2586, 2015 (Q with 32×32 windows).
    """
    x, y = check_pair(reference, estimate, crop)
    side = effective_uiqi_window(x.shape, window)
    per_band, _ = windowed_pass(x, y, {"uiqi": uiqi_spec(side)}, moments=False)
    return float(np.mean(per_band["uiqi"]))


__all__ = [
    "UIQI_WINDOW",
    "cc",
    "cc_from_moments",
    "effective_uiqi_window",
    "ergas",
    "ergas_from_mse",
    "psnr",
    "psnr_from_mse",
    "rmse",
    "sam",
    "ssim",
    "ssim_spec",
    "uiqi",
    "uiqi_spec",
]
