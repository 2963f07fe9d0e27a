"""Separable "valid" window filtering done as small banded matrix products.

A 1-D correlation with a k-tap window over n samples, keeping only the n − k + 1 outputs
whose window lies inside the signal ("valid"), is a product with an (n − k + 1) × n banded
matrix. Cutting the output into tiles of t samples turns it into dense products of a
t × (t + k − 1) band block with a slab of the data, which BLAS runs near peak speed: 5–10×
faster than scipy.ndimage's per-line loops on the (planes, rows, cols) stacks SSIM and UIQI
need. The (t + k − 1)/k extra multiplies are a small price for that.

Every product is kept below OpenBLAS's multithreading threshold (m·n·k ≈ 2.6e5): BLAS then
runs single-threaded, and parallelism comes from our own threads over band groups. A
multithreaded OpenBLAS spin-waits, and on a machine shared with other jobs (a Snakemake run
scoring several scenes at once) that made the same filtering 10–30× slower.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: Largest m·n·k of one BLAS call (OpenBLAS goes multithreaded above 65536·4).
_MAX_GEMM = 240_000


def gaussian_kernel(sigma: float = 1.5, truncate: float = 3.5) -> np.ndarray:
    """Sampled 1-D Gaussian of radius ``int(truncate·σ + 0.5)``, normalised to sum 1.

    With σ = 1.5 and truncate = 3.5 this is the 11-tap window of Wang et al. (2004) and the
    exact kernel ``scipy.ndimage.gaussian_filter`` (hence scikit-image) uses.
    """
    radius = int(truncate * sigma + 0.5)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (t / sigma) ** 2)
    return w / w.sum()


def box_kernel(size: int) -> np.ndarray:
    """A 1-D uniform window of ``size`` taps summing to 1."""
    return np.full(int(size), 1.0 / int(size))


@lru_cache(maxsize=64)
def _band_block(weights: tuple, tile: int, dtype: str) -> np.ndarray:
    k = len(weights)
    w = np.asarray(weights, dtype=dtype)
    block = np.zeros((tile, tile + k - 1), dtype=dtype)
    for j in range(tile):
        block[j, j:j + k] = w
    block.setflags(write=False)
    return block


def _plan(k: int, n_other: int, tile: int) -> tuple[int, int]:
    """(output samples per tile, samples of the other axis per product): the preferred tile,
    with the other axis split so that one product stays below the threading threshold."""
    while tile > 1 and tile * (tile + k - 1) * 32 > _MAX_GEMM:
        tile //= 2
    chunk = _MAX_GEMM // (tile * (tile + k - 1))
    if chunk < n_other:
        chunk = max(32, chunk // 32 * 32)
    return tile, min(chunk, n_other)


# Preferred tiles, measured on 2 cores for 7–32-tap windows (benchmarks/bench_metrics.py):
# the row pass is fastest with small tiles; the column pass, whose second operand BLAS must
# transpose while packing, with 16.
_ROW_TILE = 8
_COL_TILE = 16


def _check(n: int, k: int) -> int:
    if n - k + 1 < 1:
        raise ValueError(f"window of {k} samples is longer than the axis ({n})")
    return n - k + 1


def filter_rows(a: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Valid correlation along axis −2 of a stack of planes ``a`` (..., rows, cols)."""
    k = weights.size
    n_out = _check(a.shape[-2], k)
    cols = a.shape[-1]
    tile, chunk = _plan(k, cols, _ROW_TILE)
    block = _band_block(tuple(float(v) for v in weights), tile, a.dtype.str)
    out = np.empty(a.shape[:-2] + (n_out, cols), dtype=a.dtype)
    for t0 in range(0, n_out, tile):
        m = min(tile, n_out - t0)
        b = block[:m, :m + k - 1]
        for c0 in range(0, cols, chunk):
            np.matmul(b, a[..., t0:t0 + m + k - 1, c0:c0 + chunk], out=out[..., t0:t0 + m, c0:c0 + chunk])
    return out


def filter_cols_transposed(a: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Valid correlation along axis −1 of planes (..., rows, cols), returned **transposed**:
    shape (..., cols − k + 1, rows), each plane contiguous. The transposition is free (BLAS
    reads the strided slab as a transposed operand)."""
    k = weights.size
    n_out = _check(a.shape[-1], k)
    rows = a.shape[-2]
    tile, chunk = _plan(k, rows, _COL_TILE)
    block = _band_block(tuple(float(v) for v in weights), tile, a.dtype.str)
    out = np.empty(a.shape[:-2] + (n_out, rows), dtype=a.dtype)
    for t0 in range(0, n_out, tile):
        m = min(tile, n_out - t0)
        b = block[:m, :m + k - 1]
        for r0 in range(0, rows, chunk):
            np.matmul(b, a[..., r0:r0 + chunk, t0:t0 + m + k - 1].swapaxes(-1, -2),
                      out=out[..., t0:t0 + m, r0:r0 + chunk])
    return out


def filter2_valid(a: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Separable 2-D valid correlation of planes (..., rows, cols) with the same 1-D window.

    Returns shape ``(..., cols − k + 1, rows − k + 1)``: the planes come back **transposed**
    (contiguous), which is what every caller here wants, since it only combines maps
    elementwise and averages them.
    """
    return filter_cols_transposed(filter_rows(a, weights), weights)
