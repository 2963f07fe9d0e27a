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


def _tile(k: int, n_other: int) -> int:
    """Output samples per tile: as many as keep one product below the threading threshold."""
    t = 8
    while (t + 8) * (t + 8 + k - 1) * n_other <= _MAX_GEMM and t < 64:
        t += 8
    return t


def _check(n: int, k: int) -> int:
    if n - k + 1 < 1:
        raise ValueError(f"window of {k} samples is longer than the axis ({n})")
    return n - k + 1


def filter_rows(a: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Valid correlation along axis −2 of a stack of planes ``a`` (..., rows, cols)."""
    k = weights.size
    n_out = _check(a.shape[-2], k)
    tile = _tile(k, a.shape[-1])
    block = _band_block(tuple(float(v) for v in weights), tile, a.dtype.str)
    out = np.empty(a.shape[:-2] + (n_out, a.shape[-1]), dtype=a.dtype)
    for t0 in range(0, n_out, tile):
        m = min(tile, n_out - t0)
        np.matmul(block[:m, :m + k - 1], a[..., t0:t0 + m + k - 1, :], out=out[..., t0:t0 + m, :])
    return out


def filter_cols_transposed(a: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Valid correlation along axis −1 of planes (..., rows, cols), returned **transposed**:
    shape (..., cols − k + 1, rows), each plane contiguous. The transposition is free (BLAS
    reads the strided slab as a transposed operand)."""
    k = weights.size
    n_out = _check(a.shape[-1], k)
    tile = _tile(k, a.shape[-2])
    block = _band_block(tuple(float(v) for v in weights), tile, a.dtype.str)
    out = np.empty(a.shape[:-2] + (n_out, a.shape[-2]), dtype=a.dtype)
    for t0 in range(0, n_out, tile):
        m = min(tile, n_out - t0)
        np.matmul(block[:m, :m + k - 1], a[..., :, t0:t0 + m + k - 1].swapaxes(-1, -2),
                  out=out[..., t0:t0 + m, :])
    return out


def filter2_valid(a: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Separable 2-D valid correlation of planes (..., rows, cols) with the same 1-D window.

    Returns shape ``(..., cols − k + 1, rows − k + 1)``: the planes come back **transposed**
    (contiguous), which is what every caller here wants, since it only combines maps
    elementwise and averages them.
    """
    return filter_cols_transposed(filter_rows(a, weights), weights)
