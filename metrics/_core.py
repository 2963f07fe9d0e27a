"""The computational core: one pass for per-band moments and windowed indices, one for angles.

Everything public is in :mod:`hmifbench.metrics.full_reference`; this module holds the
shared machinery, written for speed on (rows, cols, bands) float32 cubes:

* bands are processed in small groups, transposed to (bands, rows, cols) and **centred** on a
  per-band constant ``c_b`` (so that float32 sums of squares do not lose the variance to
  cancellation); statistics are summed in float64;
* windowed means (SSIM, UIQI) are separable valid filters done as banded matrix products
  (:mod:`._windows`); only four maps are filtered — p = x̃ + ỹ, d = x̃ − ỹ, p² and d² —
  because both indices need σx² + σy² and σxy, never σx² and σy² apart;
* work is split over band groups (and row blocks) run in a few threads.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ._windows import filter2_valid

#: Bands transposed and filtered together: small enough to keep the temporaries near cache
#: and the extra memory a fraction of the input, large enough for efficient BLAS calls.
BAND_GROUP = 2
#: Image rows per block of the spectral-angle pass and of the transposition.
ANGLE_ROWS = 16
TRANSPOSE_ROWS = 16


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
    float64: bool = False   # compute the filtered maps in float64 even for float32 input
    formula: str = "wang"   # "wang" (SSIM/UIQI) or "sewar"
    drop_last: bool = False


def _centres(x: np.ndarray) -> np.ndarray:
    # Any constant per band works for centring (it is added back exactly); a strided subsample
    # mean is close enough to the band mean and costs nothing.
    step = max(1, min(x.shape[0], x.shape[1]) // 64)
    return x[::step, ::step].mean(axis=(0, 1), dtype=np.float64).astype(x.dtype)


#: Rows of the filtered maps combined at a time (keeps the formula's temporaries in cache).
FORMULA_ROWS = 48


def _index_band_means(f: np.ndarray, c: np.ndarray, spec: WindowSpec) -> np.ndarray:
    """Mean over the valid window positions of the SSIM/UIQI map, per band (see
    :func:`_index_band_sums`)."""
    if spec.drop_last:
        f = f[..., :-1, :-1]
    rows = f.shape[2]
    total = np.zeros(f.shape[1])
    for r0 in range(0, rows, FORMULA_ROWS):
        total += _index_band_sums(f[:, :, r0:r0 + FORMULA_ROWS], c, spec)
    return total / (rows * f.shape[3])


def _plane_sums(q: np.ndarray) -> np.ndarray:
    return q.sum(axis=2).sum(axis=1, dtype=np.float64)


def _index_band_sums(f: np.ndarray, c: np.ndarray, spec: WindowSpec) -> np.ndarray:
    """Sum over window positions of the SSIM/UIQI map, per band.

    ``f`` is (4, g, r, q): windowed means of p, d, p², d² where p = x̃ + ỹ, d = x̃ − ỹ and
    x̃ = x − c, ỹ = y − c. In these terms (S = μx + μy, D = μx − μy, Vp = var(x + y),
    Vd = var(x − y)):

        2μxμy = (S² − D²)/2,   μx² + μy² = (S² + D²)/2,
        2σxy = (Vp − Vd)/2,    σx² + σy² = (Vp + Vd)/2,

    which needs fewer operations than the x/y form and is exactly symmetric: x == y gives
    D = Vd = 0, hence an index of exactly 1. Returns the per-band *sums* of the map.
    """
    fp, fd, fpp, fdd = f[0], f[1], f[2], f[3]
    cc = c[:, None, None]
    if spec.formula == "sewar":
        return _plane_sums(_sewar_uqi_map(fp, fd, fpp, fdd, cc, spec.kernel.size ** 2))
    s = fp + 2 * cc                      # S = μx + μy
    s *= s                               # S²
    d2 = fd * fd                         # D²
    vp = fp * fp
    np.subtract(fpp, vp, out=vp)         # Vp
    vd = fdd - d2                        # Vd
    if spec.cov_norm != 1.0:
        vp *= spec.cov_norm
        vd *= spec.cov_norm
    lum_num = s - d2
    lum_den = s
    lum_den += d2
    cs_num = vp - vd
    cs_den = vp
    cs_den += vd
    if spec.c1 > 0 or spec.c2 > 0:
        # SSIM: ((S² − D²)/2 + C1)((Vp − Vd)/2 + C2) / (((S² + D²)/2 + C1)((Vp + Vd)/2 + C2))
        lum_num += 2 * spec.c1
        lum_den += 2 * spec.c1
        cs_num += 2 * spec.c2
        cs_den += 2 * spec.c2
        lum_num *= cs_num
        lum_den *= cs_den
        lum_num /= lum_den
        return _plane_sums(lum_num)
    return _plane_sums(_uiqi_map(lum_num, lum_den, cs_num, cs_den, fpp, fdd, cc, fp))


def _uiqi_map(lum_num, lum_den, cs_num, cs_den, fpp, fdd, cc, fp):
    """Wang & Bovik's Q = (lum_num/lum_den)·(cs_num/cs_den), with their code's conventions
    for flat windows: σx² + σy² = 0 → Q = 2μxμy/(μx² + μy²); μx² + μy² = 0 →
    Q = 2σxy/(σx² + σy²); both → 1."""
    # "Zero" means zero up to the rounding of the subtraction that produced the value: a
    # flat window gives σx² + σy² ≈ eps·E[p² + d²], not exactly 0.
    tiny = 16 * np.finfo(cs_den.dtype).eps
    moment2 = fpp + fdd
    # cheap global tests first: in most images no window is flat or dark
    maybe_flat = cs_den.min() <= tiny * moment2.max()
    level2 = None
    maybe_dark = False
    if lum_den.min() <= tiny * tiny * (moment2.max() + 8 * float(np.max(cc * cc + np.abs(cc * fp)))):
        level2 = moment2 + 4 * cc * cc + 4 * np.abs(cc * fp)     # ≥ E[(x+y)² + (x−y)²]
        maybe_dark = True
    with np.errstate(divide="ignore", invalid="ignore"):
        q = lum_num * cs_num
        q /= lum_den * cs_den
        if maybe_flat or maybe_dark:
            flat = cs_den <= tiny * moment2
            dark = lum_den <= tiny * tiny * level2 if maybe_dark else np.zeros_like(flat)
            np.copyto(q, lum_num / lum_den, where=flat & ~dark)
            np.copyto(q, cs_num / cs_den, where=dark & ~flat)
            q[flat & dark] = 1.0
    return q


def _sewar_uqi_map(fp, fd, fpp, fdd, cc, n_window):
    """sewar's ``_uqi_single``: Wang–Bovik's *sum*-based formula fed with window *means* and
    N = ws², as sewar 0.4.x does. This is not the UIQI (it tends to 1); it is reproduced only
    so that the ``mossfuse`` profile gives the number MossFuse's tables report."""
    s = fp + 2 * cc                                  # μx + μy
    mxmy = (s * s - fd * fd) / 4                     # μx·μy
    sq = (s * s + fd * fd) / 2                       # μx² + μy²
    epp = fpp + 4 * cc * fp + 4 * cc * cc            # E[(x + y)²]
    exx_eyy = (epp + fdd) / 2                        # E[x²] + E[y²]
    exy = (epp - fdd) / 4                            # E[xy]
    num = 4 * (n_window * exy - mxmy) * mxmy
    den1 = n_window * exx_eyy - sq
    den = den1 * sq
    q = np.ones_like(num)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.copyto(q, 2 * mxmy / sq, where=(den1 == 0) & (sq != 0))
        np.copyto(q, num / den, where=den != 0)
    return q


def n_threads() -> int:
    """Worker threads for the metrics: ``HMIFBENCH_THREADS``, else ``OMP_NUM_THREADS``, else the
    CPUs this process may run on (so a Snakemake job given 1 core uses 1)."""
    for var in ("HMIFBENCH_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(var, "").strip()
        if v.isdigit() and int(v) > 0:
            return int(v)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _run(tasks, threads: int):
    """Run callables, in a thread pool when there are several threads and tasks (numpy and
    BLAS release the GIL); re-raise the first error."""
    if threads <= 1 or len(tasks) <= 1:
        return [t() for t in tasks]
    with ThreadPoolExecutor(max_workers=min(threads, len(tasks))) as pool:
        return list(pool.map(lambda t: t(), tasks))


def _transpose_centred(x: np.ndarray, c: np.ndarray, threads: int) -> np.ndarray:
    """(rows, cols, bands) → (bands, rows, cols), minus c_b, in cache-sized row blocks."""
    rows = x.shape[0]
    out = np.empty((x.shape[2], rows, x.shape[1]), dtype=x.dtype)
    cb = c[:, None, None]
    step = TRANSPOSE_ROWS

    def block(r0):
        return lambda: np.subtract(x[r0:r0 + step].transpose(2, 0, 1), cb,
                                   out=out[:, r0:r0 + step])

    # a few large tasks rather than one per block: thread hand-off costs ~50 µs
    starts = list(range(0, rows, step))
    per = -(-len(starts) // max(1, threads))
    tasks = [(lambda ss=starts[i:i + per]: [block(r0)() for r0 in ss])
             for i in range(0, len(starts), per)]
    _run(tasks, threads)
    return out


def _group_stats(xt, yt, c, specs, moments):
    """Moments and windowed indices of one group of centred band planes (g, rows, cols)."""
    res = {}
    g = xt.shape[0]
    p = xt + yt
    d = xt - yt
    if moments:
        # float32 sums along each image row (≤ cols terms, SIMD partial sums), then float64
        # across rows; x/y moments follow from those of p = x̃ + ỹ and d = x̃ − ỹ
        sp = p.sum(axis=2).sum(axis=1, dtype=np.float64)
        sd = d.sum(axis=2).sum(axis=1, dtype=np.float64)
        spp = np.einsum("kij,kij->ki", p, p).sum(axis=1, dtype=np.float64)
        sdd = np.einsum("kij,kij->ki", d, d).sum(axis=1, dtype=np.float64)
        spd = np.einsum("kij,kij->ki", p, d).sum(axis=1, dtype=np.float64)
        res["_moments"] = np.stack([
            (sp + sd) / 2,                  # Σx̃
            (sp - sd) / 2,                  # Σỹ
            (spp + sdd + 2 * spd) / 4,      # Σx̃²
            (spp + sdd - 2 * spd) / 4,      # Σỹ²
            (spp - sdd) / 4,                # Σx̃ỹ
            sdd,                            # Σ(x − y)²
        ])
    filtered = {}       # specs with the same window share the filtered maps
    for name, spec in specs.items():
        dt = np.float64 if spec.float64 else xt.dtype
        key = (dt, tuple(spec.kernel))
        if key not in filtered:
            m = np.empty((4, g) + xt.shape[1:], dtype=dt)
            m[0], m[1] = p, d
            np.multiply(m[0], m[0], out=m[2])
            np.multiply(m[1], m[1], out=m[3])
            filtered[key] = filter2_valid(m, spec.kernel.astype(dt))
            del m
        res[name] = _index_band_means(filtered[key], c.astype(dt), spec)
    return res


def windowed_pass(x: np.ndarray, y: np.ndarray, specs: dict[str, WindowSpec],
                  moments: bool = True, threads: int | None = None
                  ) -> tuple[dict[str, np.ndarray], BandMoments | None]:
    """Per-band mean windowed indices for every spec, and (optionally) the band moments.

    Returns ``({name: (B,) float64}, BandMoments or None)``.
    """
    rows, cols, bands = x.shape
    threads = n_threads() if threads is None else max(1, int(threads))
    c = _centres(x)
    n = rows * cols
    # One transposing pass per image to (bands, rows, cols), centred on c: every later step
    # reads contiguous band planes.
    xt_all = _transpose_centred(x, c, threads)
    yt_all = _transpose_centred(y, c, threads)
    group = BAND_GROUP if specs else max(1, -(-bands // threads))
    starts = list(range(0, bands, group))
    tasks = [(lambda b0=b0: _group_stats(xt_all[b0:b0 + group], yt_all[b0:b0 + group],
                                         c[b0:b0 + group], specs, moments)) for b0 in starts]
    results = _run(tasks, threads)
    out = {name: np.concatenate([r[name] for r in results]) for name in specs}
    bm = None
    if moments:
        acc = np.concatenate([r["_moments"] for r in results], axis=1)
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


def _angles_rows(x, y, r0, r1):
    bands = x.shape[2]
    total = 0.0
    valid = 0
    for a in range(r0, r1, ANGLE_ROWS):
        b = min(a + ANGLE_ROWS, r1)
        xb = x[a:b].reshape(-1, bands)
        yb = y[a:b].reshape(-1, bands)
        nx = np.sqrt(np.einsum("pk,pk->p", xb, xb))
        ny = np.sqrt(np.einsum("pk,pk->p", yb, yb))
        ok = (nx > 0) & (ny > 0)
        if not ok.all():
            xb, yb, nx, ny = xb[ok], yb[ok], nx[ok], ny[ok]
        diff = xb / nx[:, None]
        diff -= yb / ny[:, None]
        d2 = np.einsum("pk,pk->p", diff, diff).astype(np.float64)
        # ‖a + b‖² = 4 − ‖a − b‖² for unit vectors a, b
        theta = 2.0 * np.arctan2(np.sqrt(d2), np.sqrt(np.maximum(4.0 - d2, 0.0)))
        total += float(theta.sum())
        valid += int(nx.size)
    return total, valid


def spectral_angles(x: np.ndarray, y: np.ndarray, threads: int | None = None
                    ) -> tuple[float, int, int]:
    """Sum of per-pixel spectral angles (radians) over the valid pixels, their count, and the
    number of pixels excluded because either spectrum has zero norm.

    The angle is computed as θ = 2·atan2(‖a − b‖, ‖a + b‖) with a = x/‖x‖, b = y/‖y‖ (Kahan):
    equal to arccos(⟨x, y⟩ / (‖x‖‖y‖)) but accurate for small angles — arccos of a cosine
    rounded at 1e-7 (float32) would be off by ~5e-4 rad — and exactly 0 for equal spectra.
    """
    rows, cols, _ = x.shape
    threads = n_threads() if threads is None else max(1, int(threads))
    per = -(-rows // threads)
    tasks = [(lambda r0=r0: _angles_rows(x, y, r0, min(r0 + per, rows)))
             for r0 in range(0, rows, per)]
    parts = _run(tasks, threads)
    total = sum(p[0] for p in parts)
    valid = sum(p[1] for p in parts)
    return total, valid, rows * cols - valid
