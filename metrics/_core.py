"""The computational core: per-band moments, spectral angles and windowed indices.

Everything public is in :mod:`hmifbench.metrics.full_reference`; this module prepares the
arguments of the compiled loops in :mod:`._kernels` and turns their sums into statistics:

* every band is **centred** on a constant ``c_b`` (any constant works: it is added back
  exactly), so that sums of squares do not lose the variance to cancellation; all sums are
  float64;
* windowed means (SSIM, UIQI) come from four filtered maps — p = x̃ + ỹ, d = x̃ − ỹ, p² and
  d² — because both indices need σx² + σy² and σxy, never σx² and σy² apart. With
  S = μx + μy, D = μx − μy, Vp = var(x + y) and Vd = var(x − y):

      2μxμy = (S² − D²)/2,   μx² + μy² = (S² + D²)/2,
      2σxy = (Vp − Vd)/2,    σx² + σy² = (Vp + Vd)/2,

  which is exactly symmetric: x == y gives D = Vd = 0, hence an index of exactly 1;
* the loops run in ``n_threads()`` threads over blocks of rows whose size does not depend on
  the thread count, so results are identical whatever it is.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np


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

    ``formula="sewar"`` reproduces ``sewar.full_ref.uqi`` (the ``mossfuse`` profile's UIQI, see
    :mod:`.profiles`), and ``drop_last`` leaves out the last valid window position along each
    axis (sewar's crop does).
    """

    kernel: np.ndarray      # 1-D separable window, sums to 1
    c1: float = 0.0
    c2: float = 0.0
    cov_norm: float = 1.0   # 1 = population covariance; k²/(k²−1) = sample (scikit-image default)
    formula: str = "wang"   # "wang" (SSIM/UIQI) or "sewar"
    drop_last: bool = False


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


#: Image rows per block of the moment/angle pass; output rows per block of a windowed pass,
#: at least 4 window sides (a box window restarts its running sums at each block, which
#: costs k rows).
MOMENT_BLOCK_ROWS = 32
WINDOW_BLOCK_ROWS = 64


def _window_block_rows(k: int) -> int:
    return max(WINDOW_BLOCK_ROWS, 4 * k)


# numba's default threading layer must not be entered from two Python threads at once.
_LOCK = threading.Lock()


def _centres(x: np.ndarray) -> np.ndarray:
    """Per-band centring constants: the mean of a strided subsample (close to the band mean,
    at no cost), float64."""
    step = max(1, min(x.shape[0], x.shape[1]) // 64)
    return x[::step, ::step].mean(axis=(0, 1), dtype=np.float64)


def _kernels(threads: int):
    """The compiled loops, with numba set to ``threads`` threads (imported lazily: compiling
    or loading them from numba's cache costs time that listing methods should not pay)."""
    import numba

    from . import _kernels

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    return _kernels


def _flat_tolerance(dtype, k: int) -> float:
    """Relative size below which a window variance counts as zero (Wang & Bovik's flat
    windows): the rounding of the input type, plus the drift of float64 running sums over a
    block (one rounding per added or removed row)."""
    drift = 4 * (k + _window_block_rows(k)) * float(np.finfo(np.float64).eps)
    return 16 * float(np.finfo(dtype).eps) + drift


def _flat(a: np.ndarray) -> np.ndarray:
    """(rows, cols, bands) → (rows, cols·bands), a view unless ``a`` is a cropped view."""
    a = np.ascontiguousarray(a)
    return a.reshape(a.shape[0], -1)


def _index_means(x, y, c, spec: WindowSpec, threads: int) -> np.ndarray:
    """Mean over the valid window positions of the SSIM/UIQI map of ``spec``, per band."""
    kern = _kernels(threads)
    rows, cols, bands = x.shape
    w = np.asarray(spec.kernel, dtype=np.float64)
    k = w.size
    n_r, n_c = rows - k + 1, cols - k + 1
    if spec.drop_last:
        n_r, n_c = n_r - 1, n_c - 1
    box = bool(np.all(w == w[0]))
    # Running sums of a box window are float64 (no drift); a Gaussian's taps are summed in
    # the data's type.
    acc = np.float64 if box or x.dtype != np.float32 else np.float32
    weights = np.ones(k) if box else w.astype(acc)
    if spec.formula == "sewar":
        formula = kern.SEWAR
    else:
        formula = kern.SSIM if spec.c1 > 0 or spec.c2 > 0 else kern.UIQI
    block_rows = _window_block_rows(k)
    n_blocks = -(-n_r // block_rows)
    vbuf = np.empty((n_blocks, 4, cols * bands), dtype=acc)
    hbuf = np.empty((n_blocks, 4, cols * bands), dtype=acc)
    with _LOCK:
        sums = kern.window_index_sums(_flat(x), _flat(y), c, np.tile(c, cols).astype(acc),
                                      weights, box, formula, float(spec.c1), float(spec.c2),
                                      float(spec.cov_norm), n_r, n_c, block_rows,
                                      vbuf, hbuf, _flat_tolerance(x.dtype, k))
    return sums.sum(axis=0) / (n_r * n_c)


def _sums(x, y, c, threads: int, angles: bool):
    kern = _kernels(threads)
    with _LOCK:
        sums, angle, valid = kern.moments_and_angles(_flat(x), _flat(y), c,
                                                     np.tile(c, x.shape[1]),
                                                     MOMENT_BLOCK_ROWS, angles)
    return sums.sum(axis=0), float(angle.sum()), int(valid.sum())


def _moments_from_sums(acc: np.ndarray, c: np.ndarray, n: int) -> BandMoments:
    sx, sy = acc[0] / n, acc[1] / n
    return BandMoments(
        n=n,
        mean_x=c + sx,
        mean_y=c + sy,
        var_x=np.maximum(acc[2] / n - sx * sx, 0.0),
        var_y=np.maximum(acc[3] / n - sy * sy, 0.0),
        cov_xy=acc[4] / n - sx * sy,
        mse=acc[5] / n,
    )


def _threads(threads) -> int:
    return n_threads() if threads is None else max(1, int(threads))


def windowed_pass(x: np.ndarray, y: np.ndarray, specs: dict[str, WindowSpec],
                  moments: bool = True, threads: int | None = None
                  ) -> tuple[dict[str, np.ndarray], BandMoments | None]:
    """Per-band mean windowed indices for every spec, and (optionally) the band moments.

    Returns ``({name: (B,) float64}, BandMoments or None)``.
    """
    threads = _threads(threads)
    c = _centres(x)
    out = {name: _index_means(x, y, c, spec, threads) for name, spec in specs.items()}
    bm = None
    if moments:
        acc, _, _ = _sums(x, y, c, threads, angles=False)
        bm = _moments_from_sums(acc, c, x.shape[0] * x.shape[1])
    return out, bm


def band_moments(x: np.ndarray, y: np.ndarray, threads: int | None = None) -> BandMoments:
    """Per-band moments alone (no windowed index)."""
    return windowed_pass(x, y, {}, moments=True, threads=threads)[1]


def moments_and_angles(x: np.ndarray, y: np.ndarray, threads: int | None = None
                       ) -> tuple[BandMoments, float, int, int]:
    """Band moments and spectral angles in one pass: (moments, sum of angles in radians over
    the valid pixels, their count, the number of excluded pixels) — see
    :func:`spectral_angles`."""
    c = _centres(x)
    acc, total, valid = _sums(x, y, c, _threads(threads), angles=True)
    n = x.shape[0] * x.shape[1]
    return _moments_from_sums(acc, c, n), total, valid, n - valid


def spectral_angles(x: np.ndarray, y: np.ndarray, threads: int | None = None
                    ) -> tuple[float, int, int]:
    """Sum of per-pixel spectral angles (radians) over the valid pixels, their count, and the
    number of pixels excluded because either spectrum has zero norm.

    The angle is computed as θ = 2·atan2(‖a − b‖, ‖a + b‖) with a = x/‖x‖, b = y/‖y‖ (Kahan),
    in float64: equal to arccos(⟨x, y⟩ / (‖x‖‖y‖)) but accurate for small angles — arccos of
    a cosine rounded at 1e-7 (float32) would be off by ~5e-4 rad — and exactly 0 for equal
    spectra.
    """
    _, total, valid, excluded = moments_and_angles(x, y, threads)
    return total, valid, excluded
