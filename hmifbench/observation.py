"""The observation model of HS–MS fusion: PSF blur, decimation, SRF projection and noise.

    Yh = decimate_s(PSF ⋆ X) + Nh        LR-HSI, (H/s, W/s, B)
    Ym = X · Rᵀ + Nm                     HR-MSI, (H, W, b)

Conventions (each is fixed here, once, and recorded with every simulated pair):

* **PSF** — a 2-D kernel ``h`` of shape (k0, k1), non-negative, summing to 1, applied as the
  footprint of a detector: ``(h ⋆ X)[p, q] = Σ_ij h[i, j] · X[p + i − c0, q + j − c1]`` with the
  kernel centre ``c = (k − 1) // 2`` (the middle for odd k; for even k the pixel just before
  the middle). For a symmetric kernel this equals a convolution.
* **Border** — how X is extended beyond its edges for the blur: ``"reflect101"`` (default;
  ``d c b | a b c d | c b a``, OpenCV's BORDER_REFLECT_101, NumPy's "reflect"),
  ``"symmetric"`` (``b a | a b c d | d c``, MATLAB's "symmetric"), ``"wrap"`` (periodic, what
  FFT-based methods assume) or ``"zero"``.
* **Decimation phase** — LR pixel i is the blurred HR pixel ``s·i + offset``, with default
  ``offset = s // 2 − 1`` (15 at ×32, 3 at ×8, 1 at ×4). With an s×s box PSF this makes LR
  pixel i exactly the mean of HR block i. H and W must be multiples of s.
* **SRF** — a (b × B) matrix whose rows are non-negative and sum to 1; ``Ym = X · Rᵀ``.
* **Noise** — white Gaussian, at a target SNR in dB. Per band (default):
  ``σ_b = RMS(X_b) · 10^(−SNR/20)`` with ``RMS(X_b) = ‖X_b‖₂ / √(H·W)``; per cube: one σ from
  the RMS of the whole cube. ``None`` or ``inf`` means no noise.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage, signal

from hmifbench.cube import Cube, as_array
from hmifbench.errors import InputError

#: The border mode of the suite's blur, used wherever none is given.
DEFAULT_BORDER = "reflect101"

BORDERS = {
    # our name: (numpy.pad mode, scipy.ndimage mode)
    "reflect101": ("reflect", "mirror"),
    "symmetric": ("symmetric", "reflect"),
    "wrap": ("wrap", "wrap"),
    "zero": ("constant", "constant"),
}


def gaussian_psf(size: int, sigma: float, sigma_y: float | None = None,
                 angle_deg: float = 0.0) -> np.ndarray:
    """A sampled Gaussian PSF of shape (size, size), normalised to sum 1.

    Parameters
    ----------
    size : int
        Kernel side in HR pixels (odd sizes are centred exactly).
    sigma : float
        Standard deviation along the kernel's first principal axis, HR pixels.
    sigma_y : float, optional
        Standard deviation along the second axis (anisotropic PSF); defaults to ``sigma``.
    angle_deg : float
        Rotation of the principal axes, degrees counter-clockwise.

    Notes
    -----
    The kernel is ``exp(−½ uᵀ Σ⁻¹ u)`` sampled at integer offsets ``u`` from the centre
    ``(size − 1) // 2`` and divided by its sum. The isotropic case equals the outer product of
    OpenCV's ``getGaussianKernel(size, sigma)`` with itself.
    """
    size = int(size)
    if size < 1:
        raise InputError(f"PSF size must be >= 1, got {size}")
    if not sigma > 0 or (sigma_y is not None and not sigma_y > 0):
        raise InputError(f"PSF sigma must be > 0, got {sigma}, {sigma_y}")
    sy = sigma if sigma_y is None else sigma_y
    c = (size - 1) // 2
    r = np.arange(size, dtype=np.float64) - c
    rr, cc = np.meshgrid(r, r, indexing="ij")
    t = math.radians(angle_deg)
    u = cc * math.cos(t) + rr * math.sin(t)
    v = -cc * math.sin(t) + rr * math.cos(t)
    h = np.exp(-0.5 * ((u / sigma) ** 2 + (v / sy) ** 2))
    return h / h.sum()


def fwhm_gaussian_params(scale: int) -> tuple[int, float]:
    """Size and σ of the Gaussian PSF whose FWHM is one LR pixel.

    ``σ = s / (2·√(2 ln 2)) ≈ s / 2.3548`` HR pixels, size the odd integer ``2·⌈3σ⌉ + 1``:
    the usual MTF-matched stand-in for a sensor's PSF when the true one is unknown, and the
    PSF of the ``gauss-fwhm-x<s>`` protocols.
    """
    sigma = int(scale) / (2 * math.sqrt(2 * math.log(2)))
    return 2 * math.ceil(3 * sigma) + 1, sigma


def fwhm_gaussian_psf(scale: int) -> np.ndarray:
    """The Gaussian PSF whose FWHM is one LR pixel (see :func:`fwhm_gaussian_params`)."""
    size, sigma = fwhm_gaussian_params(scale)
    return gaussian_psf(size, sigma)


def box_psf(size: int) -> np.ndarray:
    """A (size × size) box (uniform) PSF summing to 1."""
    size = int(size)
    if size < 1:
        raise InputError(f"PSF size must be >= 1, got {size}")
    return np.full((size, size), 1.0 / size**2)


def check_psf(psf, name: str = "psf") -> np.ndarray:
    """Validate a PSF: 2-D, finite, non-negative, summing to 1 (within 1e-6)."""
    h = np.asarray(psf, dtype=np.float64)
    if h.ndim != 2:
        raise InputError(f"{name}: a PSF must be a 2-D kernel, got shape {h.shape}")
    if not np.isfinite(h).all() or (h < 0).any():
        raise InputError(f"{name}: a PSF must be finite and non-negative")
    if abs(h.sum() - 1.0) > 1e-6:
        raise InputError(f"{name}: a PSF must sum to 1, got {h.sum():.6g}")
    return h


def default_offset(scale: int) -> int:
    """The default decimation phase, ``s // 2 − 1`` (0 for s = 1)."""
    return max(int(scale) // 2 - 1, 0)


def keys_weights(n_out: int, n_in: int, scale: int, offset: int, a: float = -0.5) -> np.ndarray:
    """(n_out × n_in) matrix of Keys cubic-convolution weights (Keys 1981, a = −0.5).

    HR pixel p sits at LR coordinate ``(p − offset) / scale``, the inverse of the decimation
    phase of :func:`decimate`. Samples beyond the edge repeat the edge pixel. Rows sum to 1.
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


def upsample_bicubic(lr, scale: int, offset: int | None = None) -> np.ndarray:
    """Bicubic (Keys, a = −0.5) upsampling of a (h, w, B) cube to (s·h, s·w, B), float32.

    LR pixel i is placed on HR pixel ``s·i + offset`` (default :func:`default_offset`), the
    inverse of :func:`decimate`, so upsampling undoes the decimation phase exactly; samples
    beyond the edge repeat the edge pixel. The floor every fusion method must beat.
    """
    lr = np.asarray(lr.data if isinstance(lr, Cube) else lr, dtype=np.float64)
    if lr.ndim != 3:
        raise InputError(f"upsample_bicubic: expected an (h, w, B) cube, got shape {lr.shape}")
    offset = default_offset(scale) if offset is None else int(offset)
    h, w, _ = lr.shape
    a = keys_weights(h * scale, h, scale, offset)
    b = keys_weights(w * scale, w, scale, offset)
    return np.einsum("ph,hwc,qw->pqc", a, lr, b, optimize=True).astype(np.float32)


def _border_modes(border: str):
    try:
        return BORDERS[border]
    except KeyError:
        raise InputError(f"unknown border mode {border!r}; choose one of {sorted(BORDERS)}") from None


def blur(cube, psf, border: str = DEFAULT_BORDER) -> np.ndarray:
    """Blur every band of ``cube`` (rows, cols, bands) with ``psf``; returns float32.

    Separable (rank-1) kernels are applied as two exact 1-D passes; others through FFT on an
    explicitly padded cube. Both compute in float64.
    """
    x = as_array(cube, "cube").astype(np.float64)
    h = check_psf(psf)
    pad_mode, nd_mode = _border_modes(border)
    k0, k1 = h.shape
    c0, c1 = (k0 - 1) // 2, (k1 - 1) // 2
    u, s, vt = np.linalg.svd(h)
    if s.size == 1 or s[1] <= 1e-12 * s[0]:
        a, b = u[:, 0] * math.sqrt(s[0]), vt[0] * math.sqrt(s[0])
        if a.sum() < 0:
            a, b = -a, -b
        # scipy centres weights at len//2 + origin; ours is at (k-1)//2.
        y = ndimage.correlate1d(x, a, axis=0, mode=nd_mode, origin=c0 - k0 // 2)
        y = ndimage.correlate1d(y, b, axis=1, mode=nd_mode, origin=c1 - k1 // 2)
    else:
        if max(c0, k0 - 1 - c0) >= x.shape[0] or max(c1, k1 - 1 - c1) >= x.shape[1]:
            if pad_mode in ("reflect", "symmetric"):
                raise InputError(f"PSF {h.shape} is larger than the image {x.shape[:2]}")
        xp = np.pad(x, ((c0, k0 - 1 - c0), (c1, k1 - 1 - c1), (0, 0)), mode=pad_mode)
        y = signal.fftconvolve(xp, h[::-1, ::-1, None], mode="valid", axes=(0, 1))
    return y.astype(np.float32)


def decimate(cube, scale: int, offset: int | None = None) -> np.ndarray:
    """Keep HR pixel ``s·i + offset`` for every LR pixel i (rows and columns)."""
    x = as_array(cube, "cube")
    s = int(scale)
    if s < 1:
        raise InputError(f"scale must be a positive integer, got {scale}")
    off = default_offset(s) if offset is None else int(offset)
    if not 0 <= off < s:
        raise InputError(f"decimation offset must be in [0, {s}), got {off}")
    rows, cols = x.shape[:2]
    if rows % s or cols % s:
        raise InputError(f"image size {rows}×{cols} is not a multiple of the scale {s}")
    return np.ascontiguousarray(x[off::s, off::s])


def spatial_degrade(cube, psf, scale: int, offset: int | None = None,
                    border: str = DEFAULT_BORDER) -> np.ndarray:
    """``decimate(blur(cube, psf, border), scale, offset)``: the LR-HSI without noise."""
    return decimate(blur(cube, psf, border), scale, offset)


def check_srf(srf, bands: int | None = None, name: str = "srf") -> np.ndarray:
    """Validate an SRF matrix (b × B): finite, non-negative, rows summing to 1 (within 1e-6)."""
    r = np.asarray(srf, dtype=np.float64)
    if r.ndim != 2:
        raise InputError(f"{name}: an SRF must be a (msi_bands × hsi_bands) matrix, got shape {r.shape}")
    if bands is not None and r.shape[1] != bands:
        raise InputError(f"{name}: SRF has {r.shape[1]} columns but the HSI has {bands} bands")
    if not np.isfinite(r).all() or (r < 0).any():
        raise InputError(f"{name}: an SRF must be finite and non-negative")
    sums = r.sum(axis=1)
    if np.any(np.abs(sums - 1.0) > 1e-6):
        raise InputError(f"{name}: SRF rows must sum to 1, got {np.round(sums, 6).tolist()} "
                         "(use hmifbench.observation.normalise_srf)")
    return r


def normalise_srf(srf) -> np.ndarray:
    """Divide every SRF row by its sum (rows with zero sum are an error)."""
    r = np.asarray(srf, dtype=np.float64)
    sums = r.sum(axis=1, keepdims=True)
    if np.any(sums <= 0):
        raise InputError("an SRF row has no response inside the HSI's bands")
    return r / sums


def spectral_degrade(cube, srf) -> np.ndarray:
    """Project a cube on the MSI bands: ``X · Rᵀ`` (rows, cols, b), float32."""
    x = as_array(cube, "cube")
    r = check_srf(srf, x.shape[2])
    return (x.reshape(-1, x.shape[2]).astype(np.float64) @ r.T).reshape(
        x.shape[0], x.shape[1], r.shape[0]).astype(np.float32)


def resample_srf(source_nm, response, target_nm) -> tuple[np.ndarray, np.ndarray]:
    """Sample response curves at the HSI's band centres and renormalise the rows.

    Parameters
    ----------
    source_nm : array_like (n,)
        Wavelengths of the tabulated curves, nm, increasing.
    response : array_like (n, b)
        One column per MSI band, any scale.
    target_nm : array_like (B,)
        Band centres of the HSI, nm.

    Returns
    -------
    srf : ndarray (b, B)
        Linear interpolation of each curve at the band centres (0 outside the table), rows
        normalised to sum 1.
    covered : ndarray (b,)
        Fraction of each curve's area (trapezoid rule) inside the HSI's range
        ``[first centre − ½ step, last centre + ½ step]``: how much of the band the HSI sees.
    """
    src = np.asarray(source_nm, dtype=np.float64)
    resp = np.asarray(response, dtype=np.float64)
    tgt = np.asarray(target_nm, dtype=np.float64)
    if resp.ndim != 2 or resp.shape[0] != src.size:
        raise InputError(f"response must be (len(source_nm), bands), got {resp.shape}")
    sampled = np.stack([np.interp(tgt, src, resp[:, j], left=0.0, right=0.0)
                        for j in range(resp.shape[1])])
    half = (tgt[1] - tgt[0]) / 2 if tgt.size > 1 else 5.0
    inside = (src >= tgt[0] - half) & (src <= tgt[-1] + half)
    total = np.trapezoid(resp, src, axis=0)
    within = np.trapezoid(resp[inside], src[inside], axis=0) if inside.sum() > 1 else np.zeros(resp.shape[1])
    return normalise_srf(sampled), within / np.where(total > 0, total, 1.0)


def noise_sigma(cube, snr_db: float, per: str = "band") -> np.ndarray:
    """Noise standard deviation giving ``snr_db``: one per band (``per="band"``) or per cube."""
    x = as_array(cube, "cube").astype(np.float64)
    if per == "band":
        rms = np.sqrt(np.mean(x**2, axis=(0, 1)))
    elif per == "cube":
        rms = np.full(x.shape[2], np.sqrt(np.mean(x**2)))
    else:
        raise InputError(f"noise 'per' must be 'band' or 'cube', got {per!r}")
    return rms * 10.0 ** (-float(snr_db) / 20.0)


def add_noise(cube, snr_db: float | None, rng: np.random.Generator, per: str = "band") -> np.ndarray:
    """Add white Gaussian noise at ``snr_db`` (see the module notes); ``None``/inf adds none."""
    x = as_array(cube, "cube")
    if snr_db is None or math.isinf(snr_db):
        return x.copy()
    sigma = noise_sigma(x, snr_db, per)
    n = rng.standard_normal(x.shape) * sigma
    return (x.astype(np.float64) + n).astype(np.float32)
