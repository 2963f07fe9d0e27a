"""No-reference quality of an HS–MS fusion result: D_λ, D_s and QNR.

For real pairs there is no HR-HSI to compare with. The QNR protocol (Alparone et al. 2008)
instead checks that the fused image keeps the relations its inputs have:

* **spectral distortion** D_λ — the UIQI between every two bands of the fused image should
  equal the UIQI between the same two bands of the LR-HSI:

      D_λ = ( 1/(B(B−1)) Σ_{l≠r} |Q(F_l, F_r) − Q(L_l, L_r)|^p )^(1/p)

* **spatial distortion** D_s — the UIQI between a fused band and an MSI band should equal the
  UIQI between the LR-HSI band and that MSI band brought to the LR grid (M̃ = decimate(PSF ⋆ M)):

      D_s = ( 1/(B·b) Σ_l Σ_m |Q(F_l, M_m) − Q(L_l, M̃_m)|^q )^(1/q)

* QNR = (1 − D_λ)^α · (1 − D_s)^β; 1 is ideal, 0 worst.

Alparone et al. define D_s for a single panchromatic band; with b MSI bands we average over
them (the plain generalisation; this choice is ours and documented in docs/metrics.md). Q is the UIQI of :func:`hmifbench.metrics.uiqi` with a uniform sliding window of
``window`` pixels on the HR grid and ``max(2, round(window / s))`` on the LR grid (a window
shrinks to the image side when the image is smaller), so that both cover the same ground area,
as Alparone et al. prescribe.

References
----------
L. Alparone, B. Aiazzi, S. Baronti, A. Garzelli, F. Nencini, M. Selva, "Multispectral and
panchromatic data fusion assessment without reference", PE&RS 74(2):193–200, 2008, eqs. 4–6.
"""

from __future__ import annotations

import numpy as np

from hmifbench import observation
from hmifbench.observation import DEFAULT_BORDER
from hmifbench.errors import InputError

from ._checks import _as_float_array, _check_finite, check_scale
from ._core import windowed_pass
from .full_reference import UIQI_WINDOW, effective_uiqi_window, uiqi_spec

#: Pairs of bands scored per pass (bounds the temporary memory).
_PAIRS_PER_PASS = 32


def _load(a, name):
    a = np.asarray(_as_float_array(a, name), dtype=np.float32)
    _check_finite(a, name)
    return a


def _pairwise_q(a: np.ndarray, b: np.ndarray, pairs: list[tuple[int, int]], window: int) -> np.ndarray:
    """UIQI between a[..., i] and b[..., j] for every (i, j) in pairs."""
    side = effective_uiqi_window(a.shape, window)
    spec = {"q": uiqi_spec(side)}
    out = np.empty(len(pairs))
    for k0 in range(0, len(pairs), _PAIRS_PER_PASS):
        chunk = pairs[k0:k0 + _PAIRS_PER_PASS]
        ia = [i for i, _ in chunk]
        jb = [j for _, j in chunk]
        # fancy indexing copies the selected bands into fresh (rows, cols, n) arrays
        q, _ = windowed_pass(a[..., ia], b[..., jb], spec, moments=False)
        out[k0:k0 + len(chunk)] = q["q"]
    return out


def _lr_window(window: int, scale: float) -> int:
    return max(2, round(window / scale))


def d_lambda(fused, lr_hsi, p: float = 1.0, window: int = UIQI_WINDOW, scale: float | None = None) -> float:
    """Spectral distortion D_λ of Alparone et al. (2008), eq. 4, in [0, 1].

    ``scale`` (HR/LR ratio) sets the LR window; by default it is read off the image sizes.
    """
    f = _load(fused, "fused")
    lr = _load(lr_hsi, "lr_hsi")
    if f.shape[2] != lr.shape[2]:
        raise InputError(f"fused has {f.shape[2]} bands but lr_hsi has {lr.shape[2]}")
    if f.shape[2] < 2:
        raise InputError("D_lambda needs at least 2 bands")
    s = check_scale(scale) if scale is not None else f.shape[0] / lr.shape[0]
    pairs = [(i, j) for i in range(f.shape[2]) for j in range(i + 1, f.shape[2])]
    q_hr = _pairwise_q(f, f, pairs, window)
    q_lr = _pairwise_q(lr, lr, pairs, _lr_window(window, s))
    # Q is symmetric, so the mean over ordered pairs l ≠ r is the mean over l < r
    return float(np.mean(np.abs(q_hr - q_lr) ** p) ** (1.0 / p))


def d_s(fused, lr_hsi, hr_msi, scale, psf=None, offset: int | None = None, q: float = 1.0,
        window: int = UIQI_WINDOW, border: str = DEFAULT_BORDER) -> float:
    """Spatial distortion D_s (Alparone et al. 2008, eq. 5, averaged over the MSI bands).

    The MSI is brought to the LR grid with :func:`hmifbench.observation.spatial_degrade`
    (``psf``; default a Gaussian whose FWHM is one LR pixel, σ = s/(2√(2 ln 2)), the usual
    MTF-matched choice; ``offset`` the decimation phase, default s//2 − 1).
    """
    f = _load(fused, "fused")
    lr = _load(lr_hsi, "lr_hsi")
    m = _load(hr_msi, "hr_msi")
    s = _check_geometry(f, lr, m, scale)
    m_lr = observation.spatial_degrade(m, _psf_or_default(psf, s), s, offset, border)
    nb, nm = f.shape[2], m.shape[2]
    pairs = [(i, j) for i in range(nb) for j in range(nm)]
    q_hr = _pairwise_q(f, m, pairs, window)
    q_lr = _pairwise_q(lr, m_lr, pairs, _lr_window(window, s))
    return float(np.mean(np.abs(q_hr - q_lr) ** q) ** (1.0 / q))


def qnr(fused, lr_hsi, hr_msi, scale, psf=None, offset: int | None = None, alpha: float = 1.0,
        beta: float = 1.0, p: float = 1.0, q: float = 1.0, window: int = UIQI_WINDOW,
        border: str = DEFAULT_BORDER) -> dict[str, float]:
    """QNR = (1 − D_λ)^α (1 − D_s)^β with its two terms (Alparone et al. 2008, eq. 6).

    Returns ``{"d_lambda": ..., "d_s": ..., "qnr": ...}``.
    """
    f = _load(fused, "fused")
    lr = _load(lr_hsi, "lr_hsi")
    m = _load(hr_msi, "hr_msi")
    s = _check_geometry(f, lr, m, scale)
    dl = d_lambda(f, lr, p=p, window=window, scale=s)
    ds = d_s(f, lr, m, s, psf=psf, offset=offset, q=q, window=window, border=border)
    value = max(1.0 - dl, 0.0) ** alpha * max(1.0 - ds, 0.0) ** beta
    return {"d_lambda": dl, "d_s": ds, "qnr": float(value)}


def _check_geometry(f, lr, m, scale) -> int:
    s = check_scale(scale)
    if s != int(s) or s < 1:
        raise InputError(f"scale must be a positive integer for the LR/HR grids, got {scale!r}")
    s = int(s)
    if f.shape[2] != lr.shape[2]:
        raise InputError(f"fused has {f.shape[2]} bands but lr_hsi has {lr.shape[2]}")
    if f.shape[:2] != m.shape[:2]:
        raise InputError(f"fused is {f.shape[0]}×{f.shape[1]} but hr_msi is {m.shape[0]}×{m.shape[1]}")
    if (lr.shape[0] * s, lr.shape[1] * s) != f.shape[:2]:
        raise InputError(f"lr_hsi {lr.shape[0]}×{lr.shape[1]} times scale {s} is not the fused size "
                         f"{f.shape[0]}×{f.shape[1]}")
    return s


def _psf_or_default(psf, s: int) -> np.ndarray:
    if psf is not None:
        return observation.check_psf(psf)
    return observation.fwhm_gaussian_psf(s)
