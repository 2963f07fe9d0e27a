"""The computational core: one pass for per-band moments and windowed indices, one for angles.

Everything public is in :mod:`hmifbench.metrics.full_reference`; this module holds the
shared machinery, written for speed on (rows, cols, bands) float32 cubes:

* bands are processed in small groups, transposed to (bands, rows, cols) and **centred** on a
  per-band constant ``c_b`` (so that float32 sums of squares do not lose the variance to
  cancellation); statistics are summed in float64;
* windowed means (SSIM, UIQI) are separable valid filters done as banded matrix products
  (:mod:`._windows`); only four maps are filtered — x, y, x² + y² and x·y — because both
  indices need σx² + σy², never σx² and σy² apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._windows import filter2_valid

#: Bands transposed and filtered together: small enough to keep the temporaries near cache
#: and the extra memory a fraction of the input, large enough for efficient BLAS calls.
BAND_GROUP = 4
#: Image rows per block of the spectral-angle pass.
ANGLE_ROWS = 16


@dataclass(frozen=True)
class BandMoments:
    """Per-band statistics of a (reference x, estimate y) pair, float64, population form."""

    n: int                  # pixels per band
    mean_x: np.ndarray      # (B,)
    mean_y: np.ndarray
    var_x: np.ndarray
    var_y: np.ndarray
    cov_xy: np.ndarray
    mse: np.ndarray         # mean of (x − y)² per band, computed from the differences


@dataclass(frozen=True)
class WindowSpec:
    """A windowed similarity index: SSIM (c1, c2 > 0) or UIQI (c1 = c2 = 0).

    ``formula="sewar"`` reproduces ``sewar.full_ref.uqi`` (see :mod:`.compat`), and ``drop_last``
    leaves out the last valid window position along each axis (sewar's crop does).
    """

    kernel: np.ndarray      # 1-D separable window, sums to 1
    c1: float = 0.0
    c2: float = 0.0
    cov_norm: float = 1.0   # 1 = population covariance; k²/(k²−1) = sample (scikit-image default)
    float64: bool = False   # compute the filtered maps in float64 (UIQI: flat-window tests)
    formula: str = "wang"   # "wang" (SSIM/UIQI) or "sewar"
    drop_last: bool = False


def _centres(x: np.ndarray) -> np.ndarray:
    # Any constant per band works for centring (it is added back exactly); a strided subsample
    # mean is close enough to the band mean and costs nothing.
    step = max(1, min(x.shape[0], x.shape[1]) // 64)
    return x[::step, ::step].mean(axis=(0, 1), dtype=np.float64).astype(x.dtype)


def _ssim_like_band_means(f: np.ndarray, c: np.ndarray, spec: WindowSpec) -> np.ndarray:
    """Mean over the valid window positions of the SSIM/UIQI map, per band.

    ``f`` is (4, g, r, q): windowed means of x̃, ỹ, x̃² + ỹ², x̃·ỹ with x̃ = x − c, ỹ = y − c.
    """
    if spec.drop_last:
        f = f[..., :-1, :-1]
    a, b, s2, sxy = f[0], f[1], f[2], f[3]
    cc = c[:, None, None]
    if spec.formula == "sewar":
        q = _sewar_uqi_map(a, b, s2, sxy, cc, spec.kernel.size ** 2)
        return q.sum(axis=(1, 2), dtype=np.float64) / (q.shape[1] * q.shape[2])
    mx = a + cc
    my = b + cc
    # 2·covariance and summed variances from centred moments, in an order that makes them
    # bit-identical when x == y (so identical images score exactly 1)
    cov2 = 2.0 * sxy
    cov2 -= 2.0 * (a * b)
    var_sum = a * a
    var_sum += b * b
    np.subtract(s2, var_sum, out=var_sum)
    if spec.cov_norm != 1.0:
        cov2 *= spec.cov_norm
        var_sum *= spec.cov_norm
    lum_num = 2.0 * (mx * my)
    lum_den = mx * mx
    lum_den += my * my
    if spec.c1 > 0 or spec.c2 > 0:
        lum_num += spec.c1
        lum_den += spec.c1
        cov2 += spec.c2
        var_sum += spec.c2
        lum_num *= cov2
        lum_den *= var_sum
        lum_num /= lum_den
        q = lum_num
    else:
        q = _uiqi_map(lum_num, lum_den, cov2, var_sum, s2, a, b, cc)
    return q.sum(axis=(1, 2), dtype=np.float64) / (q.shape[1] * q.shape[2])


def _uiqi_map(lum_num, lum_den, cov2, var_sum, s2, a, b, cc):
    """Wang & Bovik's Q with their conventions for flat windows (numerator and denominator
    of a factor both zero make that factor 1)."""
    # Zero tests with a tolerance relative to the magnitudes that entered the subtraction
    # (the map is float64 here): a flat window gives var_sum ≈ 1e-16·s2, not exactly 0.
    tiny = 64 * np.finfo(var_sum.dtype).eps
    scale2 = s2 + 2.0 * cc * cc + 2.0 * np.abs(cc * (a + b))
    flat = var_sum <= tiny * s2
    dark = lum_den <= tiny * tiny * scale2
    with np.errstate(divide="ignore", invalid="ignore"):
        q = cov2 * lum_num / (var_sum * lum_den)
        np.copyto(q, lum_num / lum_den, where=flat & ~dark)
        np.copyto(q, cov2 / var_sum, where=dark & ~flat)
    q[flat & dark] = 1.0
    return q


def _sewar_uqi_map(a, b, s2, sxy, cc, n_window):
    """sewar's ``_uqi_single``: Wang–Bovik's sum-based formula fed with window *means* and
    N = ws², as sewar 0.4.x does. This is not the UIQI (it tends to 1); it is reproduced only so
    that the ``mossfuse`` profile gives the number MossFuse's tables report."""
    mx = a + cc
    my = b + cc
    exx_eyy = s2 + 2.0 * cc * (a + b) + 2.0 * cc * cc     # E[x²] + E[y²]
    exy = sxy + cc * (a + b) + cc * cc                      # E[xy]
    prod = mx * my
    sq = mx * mx + my * my
    num = 4.0 * (n_window * exy - prod) * prod
    den1 = n_window * exx_eyy - sq
    den = den1 * sq
    q = np.ones_like(num)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.copyto(q, 2.0 * prod / sq, where=(den1 == 0) & (sq != 0))
        np.copyto(q, num / den, where=den != 0)
    return q


def windowed_pass(x: np.ndarray, y: np.ndarray, specs: dict[str, WindowSpec],
                  moments: bool = True) -> tuple[dict[str, np.ndarray], BandMoments | None]:
    """Per-band mean windowed indices for every spec, and (optionally) the band moments.

    Returns ``({name: (B,) float64}, BandMoments or None)``.
    """
    rows, cols, bands = x.shape
    dtype = x.dtype
    c = _centres(x)
    n = rows * cols
    out = {name: np.empty(bands) for name in specs}
    # One transposing pass per image to (bands, rows, cols), centred on c: every later step
    # then reads contiguous band planes.
    xt_all = np.empty((bands, rows, cols), dtype=dtype)
    yt_all = np.empty((bands, rows, cols), dtype=dtype)
    np.subtract(x.transpose(2, 0, 1), c[:, None, None], out=xt_all)
    np.subtract(y.transpose(2, 0, 1), c[:, None, None], out=yt_all)
    acc = np.zeros((6, bands)) if moments else None
    group = BAND_GROUP if specs else bands
    buf = np.empty((4, min(group, bands), rows, cols), dtype=dtype) if specs else None
    for b0 in range(0, bands, group):
        b1 = min(b0 + group, bands)
        g = b1 - b0
        xt, yt = xt_all[b0:b1], yt_all[b0:b1]
        if moments:
            acc[0, b0:b1] = xt.sum(axis=(1, 2), dtype=np.float64)
            acc[1, b0:b1] = yt.sum(axis=(1, 2), dtype=np.float64)
            acc[2, b0:b1] = np.einsum("kij,kij->k", xt, xt, dtype=np.float64)
            acc[3, b0:b1] = np.einsum("kij,kij->k", yt, yt, dtype=np.float64)
            acc[4, b0:b1] = np.einsum("kij,kij->k", xt, yt, dtype=np.float64)
            d = xt - yt
            acc[5, b0:b1] = np.einsum("kij,kij->k", d, d, dtype=np.float64)
        if not specs:
            continue
        m = buf[:, :g]
        m[0], m[1] = xt, yt
        np.multiply(xt, xt, out=m[2])
        m[2] += yt * yt
        np.multiply(xt, yt, out=m[3])
        for name, spec in specs.items():
            src = m
            if spec.float64 and dtype != np.float64:
                # products formed in float64 too: a flat window must give a variance of
                # ~1e-16 of its level, not the 6e-8 of a float32-rounded square
                src = np.empty(m.shape, dtype=np.float64)
                src[0], src[1] = xt, yt
                np.multiply(src[0], src[0], out=src[2])
                src[2] += src[1] * src[1]
                np.multiply(src[0], src[1], out=src[3])
            k = spec.kernel.astype(src.dtype)
            f = filter2_valid(src, k)
            out[name][b0:b1] = _ssim_like_band_means(f, c[b0:b1].astype(src.dtype), spec)
    bm = None
    if moments:
        cx = c.astype(np.float64)
        sx, sy = acc[0] / n, acc[1] / n
        bm = BandMoments(
            n=n,
            mean_x=cx + sx,
            mean_y=cx + sy,
            var_x=np.maximum(acc[2] / n - sx * sx, 0.0),
            var_y=np.maximum(acc[3] / n - sy * sy, 0.0),
            cov_xy=acc[4] / n - sx * sy,
            mse=acc[5] / n,
        )
    return out, bm


def band_moments(x: np.ndarray, y: np.ndarray) -> BandMoments:
    """Per-band moments alone (no windowed index)."""
    return windowed_pass(x, y, {}, moments=True)[1]


def spectral_angles(x: np.ndarray, y: np.ndarray) -> tuple[float, int, int]:
    """Sum of per-pixel spectral angles (radians) over the valid pixels, their count, and the
    number of pixels excluded because either spectrum has zero norm.

    The angle is computed as θ = 2·atan2(‖a − b‖, ‖a + b‖) with a = x/‖x‖, b = y/‖y‖ (Kahan):
    equal to arccos(⟨x, y⟩ / (‖x‖‖y‖)) but accurate for small angles — arccos of a cosine
    rounded at 1e-7 (float32) would be off by ~5e-4 rad — and exactly 0 for equal spectra.
    """
    rows, cols, bands = x.shape
    total = 0.0
    valid = 0
    for r0 in range(0, rows, ANGLE_ROWS):
        xb = x[r0:r0 + ANGLE_ROWS].reshape(-1, bands)
        yb = y[r0:r0 + ANGLE_ROWS].reshape(-1, bands)
        nx = np.sqrt(np.einsum("pk,pk->p", xb, xb))
        ny = np.sqrt(np.einsum("pk,pk->p", yb, yb))
        ok = (nx > 0) & (ny > 0)
        if not ok.all():
            xb, yb, nx, ny = xb[ok], yb[ok], nx[ok], ny[ok]
        diff = xb / nx[:, None]
        diff -= yb / ny[:, None]
        d2 = np.einsum("pk,pk->p", diff, diff).astype(np.float64)
        # ‖a + b‖² = 4 − ‖a − b‖² for unit vectors
        theta = 2.0 * np.arctan2(np.sqrt(d2), np.sqrt(np.maximum(4.0 - d2, 0.0)))
        total += float(theta.sum())
        valid += int(nx.size)
    return total, valid, rows * cols - valid
