"""Separable "valid" window filtering done as small banded matrix products.

A 1-D correlation with a k-tap kernel over n samples, keeping only the n − k + 1 outputs
whose window lies inside the signal ("valid"), is a product with an (n − k + 1) × n banded
matrix. Cutting the output into tiles of ``t`` samples turns it into dense products of a
t × (t + k − 1) band block with a slab of the data; BLAS runs those at close to peak speed,
which beats scipy.ndimage's per-line loops by 5–10× on the (bands × rows × cols) stacks the
SSIM and UIQI need (benchmarks/bench_metrics.py). The price, (t + k − 1)/k times the minimal
multiply count, is small next to that gain.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


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


@lru_cache(maxsize=32)
def _band_block(weights: tuple, tile: int, dtype: str) -> np.ndarray:
    k = len(weights)
    w = np.asarray(weights, dtype=dtype)
    block = np.zeros((tile, tile + k - 1), dtype=dtype)
    for j in range(tile):
        block[j, j:j + k] = w
    block.setflags(write=False)
    return block


def _tile_for(k: int) -> int:
    # Measured on 2 cores (benchmarks/bench_metrics.py): 2k–3k output samples per tile keeps
    # the band blocks dense enough for BLAS while wasting < 3× the multiplies.
    return max(16, 2 * k)


def correlate_valid(a: np.ndarray, weights: np.ndarray, axis: int = -2) -> np.ndarray:
    """Valid 1-D correlation of ``a`` with ``weights`` along ``axis`` (−2 only: the rows).

    ``out[..., i] = Σ_j weights[j] · a[..., i + j]`` for i in [0, n − k], computed in the dtype
    of ``a``.
    """
    k = weights.size
    n = a.shape[axis]
    n_out = n - k + 1
    if n_out < 1:
        raise ValueError(f"window of {k} samples is longer than the axis ({n})")
    tile = _tile_for(k)
    block = _band_block(tuple(float(v) for v in weights), tile, a.dtype.str)
    if axis in (-2, a.ndim - 2):
        out = np.empty(a.shape[:-2] + (n_out, a.shape[-1]), dtype=a.dtype)
        for t0 in range(0, n_out, tile):
            m = min(tile, n_out - t0)
            np.matmul(block[:m, :m + k - 1], a[..., t0:t0 + m + k - 1, :], out=out[..., t0:t0 + m, :])
        return out
    raise ValueError("only axis -2 is supported; filter2_valid does the columns")


def filter2_valid(a: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Separable 2-D valid correlation over the last two axes with the same 1-D window.

    Returns an array of shape ``a.shape[:-2] + (rows − k + 1, cols − k + 1)``. It is a
    transposed view (the last axis varies slowest in memory): the column pass writes its
    products transposed, which lets BLAS read the strided input directly and costs no copy.
    Elementwise numpy operations on it are as fast as on a contiguous array.
    """
    k = weights.size
    t = correlate_valid(a, weights, -2)
    lead = t.shape[:-1]
    n = t.shape[-1]
    n_out = n - k + 1
    if n_out < 1:
        raise ValueError(f"window of {k} samples is longer than the axis ({n})")
    t2 = t.reshape(-1, n)
    tile = _tile_for(k)
    block = _band_block(tuple(float(v) for v in weights), tile, a.dtype.str)
    out_t = np.empty((n_out, t2.shape[0]), dtype=a.dtype)
    for t0 in range(0, n_out, tile):
        m = min(tile, n_out - t0)
        np.matmul(block[:m, :m + k - 1], t2[:, t0:t0 + m + k - 1].T, out=out_t[t0:t0 + m])
    return np.moveaxis(out_t.reshape((n_out,) + lead), 0, -1)


def n_valid(n: int, k: int) -> int:
    """Number of valid window positions along an axis of n samples."""
    return max(n - k + 1, 0)


__all__ = ["gaussian_kernel", "box_kernel", "correlate_valid", "filter2_valid", "n_valid"]
