"""Compiled loops of the metrics (numba): one pass over the (rows, cols, bands) cubes each.

The kernels read the cubes as (rows, cols·bands) arrays — their own memory layout, where an
image row is one contiguous run — so nothing is transposed or copied and the innermost loops
are long runs over contiguous memory (SIMD). Work is split into blocks of rows whose size does
not depend on the number of threads, and the per-block float64 partial sums are added in block
order, so results are identical whatever the thread count.

Windowed indices (SSIM, UIQI) filter four maps of the centred data x̃ = x − c_b, ỹ = y − c_b:
p = x̃ + ỹ, d = x̃ − ỹ, p² and d² (see :mod:`._core`). The window is separable:

* a uniform ("box") window uses running sums — O(1) per pixel whatever its size — in float64,
  so that adding and removing rows does not drift;
* a Gaussian window sums its taps directly, in the type of the buffers the caller passes
  (float32 for float32 data: the sums of k ≤ 11 weighted terms of centred data lose nothing
  that matters, and the SIMD width doubles).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# error_model="numpy" everywhere: IEEE division (inf/NaN, no ZeroDivisionError check), which
# lets LLVM vectorise the loops — with the default "python" model they stay scalar, 4× slower.

#: Elements of a flattened row filtered at a time by a Gaussian window, so that the chunk of
#: the four sums (16 KiB in float32) stays in L1 cache across the k taps.
CHUNK = 1024

#: ``formula`` codes of :func:`window_index_sums`.
SSIM = 0        # Wang et al. (2004), constants C1, C2 > 0
UIQI = 1        # Wang & Bovik (2002), with their conventions for flat windows
SEWAR = 2       # sewar.full_ref.uqi's formula (the mossfuse profile)


# ----------------------------------------------------------------- index formulas
# Arguments are window means of p, d, p², d² and the band's centre cb. With S = μx + μy,
# D = μx − μy, Vp = var(x + y), Vd = var(x − y): 4μxμy = S² − D², 2(μx² + μy²) = S² + D²,
# 4σxy = Vp − Vd, 2(σx² + σy²) = Vp + Vd.

@njit(cache=True, inline="always", error_model="numpy")
def _ssim(fp, fd, fpp, fdd, cb, c1, c2, cov_norm):
    s = fp + 2.0 * cb
    s2 = s * s
    d2 = fd * fd
    vp = (fpp - fp * fp) * cov_norm
    vd = (fdd - d2) * cov_norm
    return (((s2 - d2 + 2.0 * c1) * (vp - vd + 2.0 * c2))
            / ((s2 + d2 + 2.0 * c1) * (vp + vd + 2.0 * c2)))


@njit(cache=True, inline="always", error_model="numpy")
def _uiqi(fp, fd, fpp, fdd, cb, tiny):
    """Q = (4μxμy / 2(μx² + μy²))·(4σxy / 2(σx² + σy²)); flat windows as Wang & Bovik's code:
    σx² + σy² = 0 → the luminance term; μx² + μy² = 0 → the structure term; both → 1. "Zero"
    is zero up to ``tiny`` times the rounding scale of the value."""
    s = fp + 2.0 * cb
    s2 = s * s
    d2 = fd * fd
    vp = fpp - fp * fp
    vd = fdd - d2
    lum_num = s2 - d2
    lum_den = s2 + d2
    cs_num = vp - vd
    cs_den = vp + vd
    moment2 = fpp + fdd
    flat = cs_den <= tiny * moment2
    dark = lum_den <= tiny * tiny * (moment2 + 4.0 * cb * cb + 4.0 * abs(cb * fp))
    if flat and dark:
        return 1.0
    if flat:
        return lum_num / lum_den
    if dark:
        return cs_num / cs_den
    return (lum_num * cs_num) / (lum_den * cs_den)


@njit(cache=True, inline="always", error_model="numpy")
def _sewar(fp, fd, fpp, fdd, cb, n_window):
    """sewar's ``_uqi_single``: Wang–Bovik's *sum*-based formula fed with window *means* and
    N = ws². Not the UIQI (it tends to 1); reproduced only for the ``mossfuse`` profile."""
    s = fp + 2.0 * cb
    mxmy = (s * s - fd * fd) / 4.0                   # μx·μy
    sq = (s * s + fd * fd) / 2.0                     # μx² + μy²
    epp = fpp + 4.0 * cb * fp + 4.0 * cb * cb        # E[(x + y)²]
    exx_eyy = (epp + fdd) / 2.0                      # E[x²] + E[y²]
    exy = (epp - fdd) / 4.0                          # E[xy]
    num = 4.0 * (n_window * exy - mxmy) * mxmy
    den1 = n_window * exx_eyy - sq
    den = den1 * sq
    if den != 0.0:
        return num / den
    if den1 == 0.0 and sq != 0.0:
        return 2.0 * mxmy / sq
    return 1.0


@njit(cache=True, error_model="numpy")
def _add_row_index(h0, h1, h2, h3, scale, c, n_out_c, formula, c1, c2, cov_norm, n_window,
                   tiny, acc):
    """acc[b] += Σ_j index(window means at output column j of band b); h* hold window sums
    (times ``scale`` = means) laid out as (column, band)."""
    bands = c.size
    for j in range(n_out_c):
        # 1-D slices so that LLVM vectorises over the bands (see _box_horizontal)
        a0 = h0[j * bands:(j + 1) * bands]
        a1 = h1[j * bands:(j + 1) * bands]
        a2 = h2[j * bands:(j + 1) * bands]
        a3 = h3[j * bands:(j + 1) * bands]
        if formula == SSIM:
            for b in range(bands):
                acc[b] += _ssim(a0[b] * scale, a1[b] * scale, a2[b] * scale, a3[b] * scale,
                                c[b], c1, c2, cov_norm)
        elif formula == UIQI:
            for b in range(bands):
                acc[b] += _uiqi(a0[b] * scale, a1[b] * scale, a2[b] * scale, a3[b] * scale,
                                c[b], tiny)
        else:
            for b in range(bands):
                acc[b] += _sewar(a0[b] * scale, a1[b] * scale, a2[b] * scale, a3[b] * scale,
                                 c[b], n_window)


# ------------------------------------------------------------------- the filters

@njit(cache=True, inline="always", error_model="numpy")
def _add_maps(xr, yr, cf, w, v0, v1, v2, v3):
    """v_m += w·map_m over one flattened row (maps p, d, p², d² of the centred data)."""
    for q in range(xr.size):
        xt = xr[q] - cf[q]
        yt = yr[q] - cf[q]
        p = xt + yt
        d = xt - yt
        wp = w * p
        wd = w * d
        v0[q] += wp
        v1[q] += wd
        v2[q] += wp * p
        v3[q] += wd * d


@njit(cache=True, error_model="numpy")
def _box_horizontal(v, k, bands, n_out_c, h):
    """h[m, j·bands + b] = Σ_{t<k} v[m, (j + t)·bands + b], by running sums along j."""
    # Loops run over 1-D slices: LLVM then vectorises them (with the 2-D arrays indexed
    # directly it cannot rule out aliasing and stays scalar, 5× slower).
    for m in range(4):
        vm = v[m]
        hm = h[m]
        first = hm[:bands]
        first[:] = 0.0
        for t in range(k):
            src = vm[t * bands:(t + 1) * bands]
            for b in range(bands):
                first[b] += src[b]
        for j in range(1, n_out_c):
            prev = hm[(j - 1) * bands:j * bands]
            cur = hm[j * bands:(j + 1) * bands]
            add = vm[(j + k - 1) * bands:(j + k) * bands]
            sub = vm[(j - 1) * bands:j * bands]
            for b in range(bands):
                cur[b] = prev[b] + add[b] - sub[b]


@njit(cache=True, error_model="numpy")
def _weighted_horizontal(v, w, bands, n_out_c, h):
    """h[m, j·bands + b] = Σ_t w_t·v[m, (j + t)·bands + b] (a Gaussian window's taps)."""
    n = n_out_c * bands
    for m in range(4):
        for q0 in range(0, n, CHUNK):           # a chunk of h stays in L1 across the taps
            q1 = min(q0 + CHUNK, n)
            hm = h[m, q0:q1]
            hm[:] = 0.0
            for t in range(w.size):
                wt = w[t]
                src = v[m, t * bands + q0:t * bands + q1]    # 1-D slices: see _box_horizontal
                for q in range(q1 - q0):
                    hm[q] += wt * src[q]


@njit(parallel=True, cache=True, error_model="numpy")
def window_index_sums(x2, y2, c, cf, weights, box, formula, c1, c2, cov_norm, n_out_r, n_out_c,
                      block_rows, vbuf, hbuf, tiny):
    """Per-band sums of an SSIM/UIQI map over the first n_out_r × n_out_c valid positions.

    Parameters
    ----------
    x2, y2 : (rows, cols·bands) arrays, the cubes' rows flattened.
    c, cf : per-band centres (bands,) float64, and the same tiled over a flattened row
        (cols·bands,) in the accumulator type.
    weights : the 1-D window (k taps), accumulator type. For a uniform window (``box``) the
        caller passes ones: the sums are divided by k² at the end.
    formula : SSIM, UIQI or SEWAR; c1, c2, cov_norm: SSIM's constants and covariance factor.
    vbuf, hbuf : (n_blocks, 4, cols·bands) work buffers of the vertically and horizontally
        filtered maps; their dtype is the accumulator type (float64 for box windows).

    Returns (n_blocks, bands) float64 partial sums.
    """
    bands = c.size
    n = x2.shape[1]
    k = weights.size
    n_blocks = vbuf.shape[0]
    out = np.zeros((n_blocks, bands))
    scale = 1.0 / (k * k) if box else 1.0       # box: window sums → means
    for blk in prange(n_blocks):
        i0 = blk * block_rows
        i1 = min(i0 + block_rows, n_out_r)
        v = vbuf[blk]
        h = hbuf[blk]
        v0, v1, v2, v3 = v[0], v[1], v[2], v[3]
        for i in range(i0, i1):
            # vertical pass: v = the window's column sums (box) or weighted sums (Gaussian)
            if box and i > i0:
                _add_maps(x2[i + k - 1], y2[i + k - 1], cf, weights[0], v0, v1, v2, v3)
                _add_maps(x2[i - 1], y2[i - 1], cf, -weights[0], v0, v1, v2, v3)
            elif box:
                v[:] = 0.0
                for t in range(k):
                    _add_maps(x2[i + t], y2[i + t], cf, weights[t], v0, v1, v2, v3)
            else:
                # in chunks, so that the chunk of the four sums stays in L1 across the taps
                for q0 in range(0, n, CHUNK):
                    q1 = min(q0 + CHUNK, n)
                    v[:, q0:q1] = 0.0
                    for t in range(k):
                        _add_maps(x2[i + t, q0:q1], y2[i + t, q0:q1], cf[q0:q1], weights[t],
                                  v0[q0:q1], v1[q0:q1], v2[q0:q1], v3[q0:q1])
            if box:
                _box_horizontal(v, k, bands, n_out_c, h)
            else:
                _weighted_horizontal(v, weights, bands, n_out_c, h)
            _add_row_index(h[0], h[1], h[2], h[3], scale, c, n_out_c, formula, c1, c2,
                           cov_norm, k * k, tiny, out[blk])
    return out


# ------------------------------------------------------------ moments and angles

# reassoc: lets LLVM vectorise the per-pixel sums over bands (a strictly ordered float64 sum
# stays scalar); the order is fixed when compiling, so results are still reproducible.
@njit(parallel=True, cache=True, error_model="numpy", fastmath={"reassoc"})
def moments_and_angles(x2, y2, c, cf, block_rows, want_angles):
    """Per-band sums of x̃, ỹ, x̃², ỹ², x̃ỹ and (x − y)² (x̃ = x − c_b) in float64, and the
    spectral angle of every pixel where both spectra have non-zero norm, summed.

    The angle is Kahan's θ = 2·atan2(‖a − b‖, ‖a + b‖) on the unit vectors a = x/‖x‖,
    b = y/‖y‖, with ‖a + b‖² = 4 − ‖a − b‖².

    Returns ((n_blocks, 6, bands) sums, (n_blocks,) angle sums, (n_blocks,) pixel counts).
    """
    rows, n = x2.shape
    bands = c.size
    cols = n // bands
    n_blocks = (rows + block_rows - 1) // block_rows
    sums = np.zeros((n_blocks, 6, bands))
    angle = np.zeros(n_blocks)
    valid = np.zeros(n_blocks, dtype=np.int64)
    for blk in prange(n_blocks):
        s = np.zeros((6, n))            # per flattened-row position, reduced to bands below
        s0, s1, s2, s3, s4, s5 = s[0], s[1], s[2], s[3], s[4], s[5]
        for r in range(blk * block_rows, min((blk + 1) * block_rows, rows)):
            xr = x2[r]
            yr = y2[r]
            for q in range(n):
                xv = np.float64(xr[q])
                yv = np.float64(yr[q])
                xt = xv - cf[q]
                yt = yv - cf[q]
                e = xv - yv
                s0[q] += xt
                s1[q] += yt
                s2[q] += xt * xt
                s3[q] += yt * yt
                s4[q] += xt * yt
                s5[q] += e * e
            if not want_angles:
                continue
            for j in range(cols):
                o = j * bands
                nx = 0.0
                ny = 0.0
                for b in range(bands):
                    xv = np.float64(xr[o + b])
                    yv = np.float64(yr[o + b])
                    nx += xv * xv
                    ny += yv * yv
                if nx > 0.0 and ny > 0.0:
                    rx = 1.0 / np.sqrt(nx)
                    ry = 1.0 / np.sqrt(ny)
                    d2 = 0.0
                    for b in range(bands):
                        e = np.float64(xr[o + b]) * rx - np.float64(yr[o + b]) * ry
                        d2 += e * e
                    angle[blk] += 2.0 * np.arctan2(np.sqrt(d2), np.sqrt(max(4.0 - d2, 0.0)))
                    valid[blk] += 1
        for m in range(6):
            for j in range(cols):
                for b in range(bands):
                    sums[blk, m, b] += s[m, j * bands + b]
    return sums, angle, valid
