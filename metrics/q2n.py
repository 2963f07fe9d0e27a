"""Q2n: the hypercomplex universal image quality index of Garzelli & Nencini (2009).

Q2n generalises Wang & Bovik's UIQI, and Alparone et al.'s quaternion index Q4 (2004), to
an image of any number of bands: every pixel spectrum becomes a 2ⁿ-on (a hypercomplex number
of the Cayley–Dickson algebra with 2ⁿ components), and the index is the UIQI of the two
hypercomplex images computed with the algebra's product. This module computes it the way
``q2n.m`` of Vivone's pansharpening toolbox does (the Q2n of Yokoya's HSMSFusionToolbox
``QualityIndices.m``; see docs/references.md), on float data and without the toolbox's
``uint16`` cast — the cast belongs to the ``yokoya`` profile (:mod:`.profiles`).

References
----------
* A. Garzelli, F. Nencini, "Hypercomplex quality assessment of multi/hyperspectral images",
  IEEE GRSL 6(4):662–665, 2009 (Q2n).
* L. Alparone, S. Baronti, A. Garzelli, F. Nencini, "A global quality measurement of
  pan-sharpened multispectral imagery", IEEE GRSL 1(4):313–317, 2004 (Q4, quaternions).
* Z. Wang, A. C. Bovik, "A universal image quality index", IEEE SPL 9(3):81–84, 2002.
* G. Vivone et al., "A critical comparison among pansharpening algorithms", IEEE TGRS
  53(5):2565–2586, 2015 (32×32 blocks, shift 32).
"""

from __future__ import annotations

import functools

import numpy as np

from hmifbench.errors import InputError

from ._checks import check_pair

#: Block side and shift of Vivone's and Yokoya's toolboxes: ``q2n(I_GT, I_F, 32, 32)``.
Q2N_BLOCK = 32
Q2N_SHIFT = 32
#: MATLAB's ``eps`` (2⁻⁵²): the standard deviation ``q2n.m`` uses for a constant reference band.
MATLAB_EPS = float(np.finfo(np.float64).eps)

# Largest m·n·k of one BLAS product: below OpenBLAS's multithreading threshold (65536·4), so
# BLAS stays single-threaded: a multithreaded OpenBLAS spin-waits, which on a machine shared
# with other jobs (several Snakemake jobs scoring at once) made products 10–30× slower.
_MAX_GEMM = 240_000
# Elements (pixels × bands) of one strip of blocks processed at a time (bounds memory).
_STRIP_ELEMENTS = 1 << 20


# ------------------------------------------------------------- Cayley–Dickson algebra

def cd_conj(x) -> np.ndarray:
    """Conjugate of 2ⁿ-ons stored along the last axis: the first (real) component is kept,
    the others are negated."""
    x = np.asarray(x)
    out = -x
    out[..., 0] = x[..., 0]
    return out


def cd_mult(x, y) -> np.ndarray:
    """Cayley–Dickson product of 2ⁿ-ons stored along the last axis (broadcast over the rest).

    A 2ⁿ-on is a pair (a, b) of 2ⁿ⁻¹-ons — the first and second half of the last axis — and

        (a, b)·(c, d) = (a·c − d*·b, d·a + b·c*),

    with * the conjugate (:func:`cd_conj`), recursively down to real numbers. With this
    convention 2 components are the complex numbers (1, i), 4 are Hamilton's quaternions
    (1, i, j, k) with ij = k, 8 the octonions; beyond 8 the algebra is no longer normed
    (|xy| ≠ |x||y| in general). Computed on whole arrays, recursive over halves.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.shape[-1]
    if n != y.shape[-1] or n < 1 or n & (n - 1):
        raise InputError(f"cd_mult needs 2ⁿ components on the last axis of both, got {n} and {y.shape[-1]}")
    return _cd_mult(x, y)


def _cd_mult(x, y):
    n = x.shape[-1]
    if n == 1:
        return x * y
    h = n // 2
    a, b = x[..., :h], x[..., h:]
    c, d = y[..., :h], y[..., h:]
    return np.concatenate([_cd_mult(a, c) - _cd_mult(cd_conj(d), b),
                           _cd_mult(d, a) + _cd_mult(b, cd_conj(c))], axis=-1)


@functools.lru_cache(maxsize=16)
def cd_signs(n: int) -> np.ndarray:
    """Multiplication table of the basis of 2ⁿ-ons: e_k·e_l = S[k, l]·e_(k XOR l), S = ±1.

    Built from the same rule as :func:`cd_mult`, block by block: with h = n/2, S_h the table
    of the halves and c_l = +1 for l = 0, −1 otherwise (the conjugate's signs),
    S = [[S_h, S_hᵀ], [S_h·c_l, −S_hᵀ·c_l]] (row k, column l). Read-only int8 array.
    """
    if n < 1 or n & (n - 1):
        raise InputError(f"the number of components must be a power of two, got {n}")
    if n == 1:
        s = np.ones((1, 1), np.int8)
    else:
        h = n // 2
        sh = cd_signs(h).astype(np.int8)
        c = np.where(np.arange(h) == 0, 1, -1).astype(np.int8)
        s = np.block([[sh, sh.T], [sh * c[None, :], -sh.T * c[None, :]]]).astype(np.int8)
    s.flags.writeable = False
    return s


@functools.lru_cache(maxsize=16)
def _xor_plan(bands: int, n: int):
    """How to sum a (bands × bands) table of products e_k·e_l into the n components k XOR l:
    a column order that groups equal k XOR l, the segment starts, the components present
    and the signs in that order."""
    k, l = np.meshgrid(np.arange(bands), np.arange(bands), indexing="ij")
    target = (k ^ l).ravel()
    order = np.argsort(target, kind="stable")
    present, starts = np.unique(target[order], return_index=True)
    signs = cd_signs(n)[:bands, :bands].ravel()[order].astype(np.float64)
    return order, starts, present, signs


# ----------------------------------------------------------------- blocks and padding

def _grid(size: int, block: int, shift: int, what: str) -> tuple[int, int]:
    """Number of blocks along an axis of ``size`` pixels and the pixels mirrored after it
    (``q2n.m``: ceil(size/shift) blocks, (steps − 1)·shift + block − size padding)."""
    steps = -(-size // shift)
    pad = (steps - 1) * shift + block - size
    if pad > size:
        need = next(m for m in range(1, block + shift + 1)
                    if (-(-m // shift) - 1) * shift + block - m <= m)
        raise InputError(
            f"q2n: an image of {size} {what} is too small for {block}×{block} blocks with shift "
            f"{shift}: mirror padding to {size + pad} {what} needs at least {need} {what}")
    return steps, max(pad, 0)


def q2n_fits(shape, block: int = Q2N_BLOCK, shift: int = Q2N_SHIFT) -> bool:
    """Whether an image of ``shape`` (rows, cols, ...) is large enough for ``q2n.m``'s mirror
    padding (one mirror image per axis at most)."""
    return all((-(-s // shift) - 1) * shift + block - s <= s for s in shape[:2])


def mirror_pad(a: np.ndarray, block: int = Q2N_BLOCK, shift: int = Q2N_SHIFT) -> np.ndarray:
    """``a`` (rows, cols, bands) padded at the bottom and right as ``q2n.m`` does: each band is
    extended by its mirror image *including* the edge pixel (row r−1, r−2, … after the last
    row r−1; numpy's ``mode="symmetric"``), columns first, then rows (so the corner is the
    mirror of the mirror), up to (steps − 1)·shift + block pixels per axis."""
    _, pr = _grid(a.shape[0], block, shift, "rows")
    _, pc = _grid(a.shape[1], block, shift, "columns")
    if pr == 0 and pc == 0:
        return a
    return np.pad(a, ((0, pr), (0, pc), (0, 0)), mode="symmetric")


def _check_block(block, shift) -> tuple[int, int]:
    for name, v, low in (("block", block, 2), ("shift", shift, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise InputError(f"q2n {name} must be an integer >= {low}, got {v!r}")
    return int(block), int(shift)


# ---------------------------------------------------------------------- the index

def q2n(reference, estimate, block: int = Q2N_BLOCK, shift: int = Q2N_SHIFT, crop: int = 0) -> float:
    """Q2n index of Garzelli & Nencini (2009): the hypercomplex UIQI, averaged over blocks.

    Parameters
    ----------
    reference, estimate : array_like or Cube, shape (rows, cols, bands)
        Ground truth X and fused image Y, float (or integer) data. NaN/Inf, a shape mismatch
        or a non-3-D array raise :class:`~hmifbench.errors.InputError`.
    block, shift : int
        Side of the square blocks and the step between them (32 and 32 in Vivone's and
        Yokoya's toolboxes: non-overlapping 32×32 blocks).
    crop : int
        Pixels removed from every border of both images first.

    Returns
    -------
    float
        Q2n = (1/K) Σ_blocks |q_block| over the K blocks; no units, ideal 1. Range [0, 1]
        for up to 8 components (see Notes); from 16 components on, q ≤ 1 is not a theorem
        (the algebra is not normed), though no larger value has been observed.

    Notes
    -----
    **Blocks and border.** Along each axis of size S there are ceil(S/shift) blocks, block j
    covering pixels j·shift … j·shift + block − 1. The image is extended at the bottom and
    right, band by band, by its mirror image *including the edge pixel*, up to
    (steps − 1)·shift + block pixels (:func:`mirror_pad`: 40 rows become 64: rows 0…39 then
    39, 38, …, 16). An image too small for one mirror image (fewer than block/2 pixels along
    an axis for shift = block) raises InputError, where ``q2n.m`` fails with an index error.
    When shift > block the blocks fit without padding.

    **Bands.** The B bands are zero-padded (in both images) to 2^m components, m = ceil(log2 B)
    (31 → 32, 3 → 4; 1 stays 1); the padded components are constant 1 after normalisation.

    **Normalisation**, per block and band b: with μ_b and σ_b the mean and *sample* standard
    deviation (divisor N − 1, N = block² pixels) of the reference block,
    z_b = (X_b − μ_b)/σ_b + 1 and v_b = (Y_b − μ_b)/σ_b + 1 — the estimate is normalised with
    the *reference's* statistics. A constant reference band (σ_b = 0) gets σ_b = eps = 2⁻⁵²
    as in ``q2n.m``: its z_b is 1 and any deviation of the estimate is amplified 4.5e15 times,
    so such a block scores ≈ 0 unless the estimate is constant and equal there too. (A band is
    taken as constant when its maximum equals its minimum, so rounding in the mean of a
    constant float block cannot fake a tiny σ.)

    **Index**, per block, with z = (z_1, …, z_2^m) and v = (v_1, …, v_2^m)* (the estimate
    conjugated) as 2^m-ons, z̄, v̄ their block means, |·| the Euclidean norm and the product of
    :func:`cd_mult`:

        σ_zv = (1/(N−1)) Σ_p (z_p − z̄)·(v_p − v̄),
        σ_z² = (1/(N−1)) Σ_p |z_p − z̄|²,   σ_v² likewise,
        q = |σ_zv| · 2/(σ_z² + σ_v²) · 2|z̄||v̄|/(|z̄|² + |v̄|²),

    i.e. Garzelli & Nencini's |σ_zv|/(σ_zσ_v) · 2σ_zσ_v/(σ_z²+σ_v²) · 2|z̄||v̄|/(|z̄|²+|v̄|²).
    If σ_z² + σ_v² = 0 (both blocks constant) q is the last factor alone (``q2n.m``'s
    ``termine3 == 0`` branch): 1 when the constants agree. With one band q is |UIQI| of the
    normalised block; with 4 bands it is Alparone et al.'s Q4. For up to 8 components the
    algebra is normed, so |σ_zv| ≤ σ_zσ_v (Cauchy–Schwarz) and q ∈ [0, 1].

    **Relation to** ``q2n.m``: the same blocks, padding, normalisation, eps and branches, and
    the same value up to rounding (its product ``onion_mult`` differs from :func:`cd_mult`
    only by fixed signs of the result's components, which leave |σ_zv| unchanged). Departures:
    no ``uint16`` cast (done by the ``yokoya`` profile); σ_zv, σ_z², σ_v² are computed from
    centred values rather than raw moments (equal in exact arithmetic; a block that is exactly
    constant in both images then reaches the ``termine3 == 0`` branch reliably); and where the
    reference block band has mean exactly 0, ``q2n.m`` normalises the estimate as Y_b + 1
    (no division by σ_b), which makes the index depend on the data's scale — here the
    estimate is divided by σ_b (or eps) like every other band. The ``yokoya`` profile keeps
    ``q2n.m``'s rule. Per-band mirror padding in ``q2n.m`` is correct (each band is padded
    with itself).

    Computation: per block the (B × B) cross-moment table of the centred bands is one matrix
    product, and σ_zv is assembled from it with the basis multiplication table
    (:func:`cd_signs`: e_k·e_l = ±e_(k XOR l)); float64 throughout.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).random((64, 64, 31))
    >>> round(q2n(x, x), 12)
    1.0
    """
    block, shift = _check_block(block, shift)
    x, y = check_pair(reference, estimate, crop)
    value, _ = q2n_map(x, y, block, shift)
    return value


def q2n_map(x: np.ndarray, y: np.ndarray, block: int = Q2N_BLOCK, shift: int = Q2N_SHIFT,
            matlab_zero_mean: bool = False) -> tuple[float, np.ndarray]:
    """Q2n and the map of |q| per block (steps_rows × steps_cols) of validated arrays.

    ``matlab_zero_mean=True`` reproduces ``q2n.m`` where a reference block band has mean
    exactly 0: the estimate band is then Y_b + 1, not divided by σ_b (see :func:`q2n`).
    """
    block, shift = _check_block(block, shift)
    rows, cols, bands = x.shape
    sr, _ = _grid(rows, block, shift, "rows")
    sc, _ = _grid(cols, block, shift, "columns")
    xp = mirror_pad(x, block, shift)
    yp = mirror_pad(y, block, shift)
    qmap = np.empty((sr, sc))
    per_strip = max(1, _STRIP_ELEMENTS // (sc * block * block * bands))
    for r0 in range(0, sr, per_strip):
        r1 = min(sr, r0 + per_strip)
        xb = _blocks(xp, r0, r1, sc, block, shift)
        yb = _blocks(yp, r0, r1, sc, block, shift)
        qmap[r0:r1] = _block_q(xb, yb, matlab_zero_mean).reshape(r1 - r0, sc)
    return float(qmap.mean()), qmap


def _blocks(a, r0, r1, sc, block, shift) -> np.ndarray:
    """Blocks of block-rows r0…r1−1 as a float64 array (blocks, block², bands)."""
    strip = a[r0 * shift:(r1 - 1) * shift + block, :(sc - 1) * shift + block]
    if shift == block:
        nr = r1 - r0
        out = strip.reshape(nr, block, sc, block, -1).transpose(0, 2, 1, 3, 4)
    else:
        win = np.lib.stride_tricks.sliding_window_view(strip, (block, block), axis=(0, 1))
        out = win[::shift, ::shift].transpose(0, 1, 3, 4, 2)
    return np.ascontiguousarray(out, dtype=np.float64).reshape(-1, block * block, a.shape[2])


def _centred(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Block-band means and deviations; exactly 0 deviations where a block band is constant."""
    mean = a.mean(axis=1)
    dev = a - mean[:, None, :]
    const = a.max(axis=1) == a.min(axis=1)
    if const.any():
        dev[np.broadcast_to(const[:, None, :], dev.shape)] = 0.0
        mean = np.where(const, a[:, 0, :], mean)
    return mean, dev


def _block_q(xb: np.ndarray, yb: np.ndarray, matlab_zero_mean: bool) -> np.ndarray:
    """|q| of each block; xb, yb float64 (blocks, N pixels, B bands)."""
    nb, npx, bands = xb.shape
    n = 1 << (bands - 1).bit_length()            # components: next power of two ≥ B
    dof = npx - 1.0
    mx, dx = _centred(xb)
    my, dy = _centred(yb)
    sx = np.sqrt(np.einsum("kpb,kpb->kb", dx, dx) / dof)
    tx = np.where(sx > 0, sx, MATLAB_EPS)
    ty = np.where(mx == 0, 1.0, tx) if matlab_zero_mean else tx
    conj = np.where(np.arange(bands) == 0, 1.0, -1.0)
    zc = dx / tx[:, None, :]                       # z − z̄ (z̄ = 1 in every component)
    vc = dy * (conj / ty)[:, None, :]              # v − v̄, v = conjugate of the normalised Y
    vbar = conj * ((my - mx) / ty + 1.0)           # padded components: z̄ = v̄ = 1 (|·| only)
    zbar2 = float(n)
    vbar2 = np.einsum("kb,kb->k", vbar, vbar) + (n - bands)
    var_z = np.einsum("kpb,kpb->k", zc, zc) / dof
    var_v = np.einsum("kpb,kpb->k", vc, vc) / dof

    # cross moments C[k, l] = Σ_p zc_k vc_l, in pixel chunks that keep BLAS single-threaded
    cross = np.zeros((nb, bands, bands))
    step = max(1, _MAX_GEMM // (bands * bands))
    for p0 in range(0, npx, step):
        cross += np.matmul(zc[:, p0:p0 + step].transpose(0, 2, 1), vc[:, p0:p0 + step])
    order, starts, present, signs = _xor_plan(bands, n)
    terms = cross.reshape(nb, bands * bands)[:, order] * signs
    cov = np.zeros((nb, n))
    cov[:, present] = np.add.reduceat(terms, starts, axis=1)
    cov_norm = np.sqrt(np.einsum("km,km->k", cov, cov)) / dof

    mean_bias = 2.0 * np.sqrt(zbar2 * vbar2) / (zbar2 + vbar2)
    var_sum = var_z + var_v
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(var_sum > 0, cov_norm * 2.0 / var_sum * mean_bias, mean_bias)
    return q


def matlab_uint16(a) -> np.ndarray:
    """MATLAB's ``uint16(a)`` of real data, as float64: round half away from zero, then
    saturate to [0, 65535] (so −0.6 → 0, 2.5 → 3, 70000 → 65535)."""
    a = np.clip(np.asarray(a, dtype=np.float64), 0.0, 65535.0)
    low = np.floor(a)
    return low + ((a - low) >= 0.5)


__all__ = ["MATLAB_EPS", "Q2N_BLOCK", "Q2N_SHIFT", "cd_conj", "cd_mult", "cd_signs", "matlab_uint16",
           "mirror_pad", "q2n", "q2n_fits", "q2n_map"]
