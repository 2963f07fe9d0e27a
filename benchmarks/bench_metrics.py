"""Speed and memory of hmifbench.metrics.evaluate against torchmetrics, in the same run.

    python benchmarks/bench_metrics.py [--size 512] [--bands 31] [--repeats 7] [--threads 2]

One float32 pair (size × size × bands), made to look like fusion data: a linear
mix of smooth Gaussian endmember spectra with smooth abundances, a shading texture and one
dark rectangle with sharp edges; the estimate is the truth plus a smooth additive error, a 2 %
spectral tilt and N(0, 0.005²) noise, clipped to [0, 1].

Timed (median of ``--repeats`` runs after one warm-up, ``--threads`` threads everywhere):

* ours — ``hmifbench.metrics.evaluate(X, Y, 4)``: the full canonical set (PSNR, SSIM, SAM,
  ERGAS, RMSE, UIQI 32×32, CC);
* torchmetrics' functional PSNR, SSIM (Gaussian 11, σ 1.5), SAM, ERGAS and UIQI on the same
  pair as (1, bands, rows, cols) float32 tensors (torchmetrics' UIQI uses an 11×11 Gaussian
  window, not 32×32: a different index, but the same kind of work).

Extra memory of ours is the peak of Python-tracked allocations (numpy reports its buffers to
tracemalloc) during one call, relative to the bytes of the input pair; the compiled loops'
own per-block row sums (6 × cols·bands float64, ≈ 0.8 MB per running thread at 512×512×31)
are allocated by numba and not traced. Prints the ratio
torchmetrics time / our time. Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import tracemalloc


def make_pair(size: int = 512, bands: int = 31, seed: int = 0):
    import numpy as np
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    wl = np.linspace(0.0, 1.0, bands)
    centres = rng.uniform(0.0, 1.0, 6)
    spectra = np.exp(-0.5 * ((wl[None] - centres[:, None]) / 0.2) ** 2)           # 6 × B
    coarse = rng.random((size // 32 + 1, size // 32 + 1, 6))
    abund = np.abs(ndimage.zoom(coarse, (32, 32, 1), order=3))[:size, :size]
    abund /= abund.sum(axis=2, keepdims=True)
    shade = 0.8 + 0.2 * ndimage.gaussian_filter(rng.random((size, size)), 3) / 0.5
    x = (abund @ spectra) * shade[..., None]
    x = 0.087 + 0.78 * (x - x.min()) / (x.max() - x.min())
    r0, c0 = size // 4, size // 3
    x[r0:r0 + size // 8, c0:c0 + size // 6] *= 0.25                              # dark block
    err = ndimage.zoom(rng.standard_normal((size // 64 + 1, size // 64 + 1, bands)),
                       (64, 64, 1), order=1)[:size, :size] * 0.01
    tilt = 1.0 + 0.02 * (wl - 0.5)
    y = x * tilt + err + 0.005 * rng.standard_normal(x.shape)
    return x.astype(np.float32), np.clip(y, 0.0, 1.0).astype(np.float32)


def timed(fn, repeats: int) -> tuple[float, float]:
    """(median wall time, median CPU time of the process) of ``repeats`` calls after a warm-up.

    CPU time (all threads) is reported too because on a shared machine the wall time swings
    with the other jobs' load while the CPU time moves much less."""
    fn()                                            # warm-up (caches, thread pools, JIT)
    wall, cpu = [], []
    for _ in range(repeats):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--bands", type=int, default=31)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-torchmetrics", action="store_true")
    args = ap.parse_args(argv)

    os.environ["HMIFBENCH_THREADS"] = str(args.threads)
    import numpy as np

    from hmifbench import metrics

    x, y = make_pair(args.size, args.bands)
    pair_bytes = x.nbytes + y.nbytes
    print(f"pair: {x.shape} float32, {pair_bytes / 2**20:.0f} MiB; threads {args.threads}; "
          f"python {platform.python_version()}, numpy {np.__version__}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    t0 = time.perf_counter()
    scores = metrics.evaluate(x, y, 4)
    print(f"ours: first call {time.perf_counter() - t0:.2f} s (compiles the loops, or loads them "
          "from numba's cache)")
    print("ours:", {k: round(v, 6) for k, v in scores.items()})
    t_ours, c_ours = timed(lambda: metrics.evaluate(x, y, 4), args.repeats)
    tracemalloc.start()
    metrics.evaluate(x, y, 4)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"ours: median {t_ours * 1e3:.1f} ms wall, {c_ours * 1e3:.1f} ms CPU; "
          f"extra memory {peak / 2**20:.0f} MiB = {peak / pair_bytes:.2f}× the input pair")

    t_q2n, _ = timed(lambda: metrics.q2n(x, y), max(3, args.repeats // 2))
    print(f"q2n (32×32 blocks, not in the canonical set): median {t_q2n * 1e3:.1f} ms wall")

    if args.no_torchmetrics:
        return 0
    try:
        import torch
        import torchmetrics
        from torchmetrics.functional.image import (
            error_relative_global_dimensionless_synthesis,
            peak_signal_noise_ratio,
            spectral_angle_mapper,
            structural_similarity_index_measure,
            universal_image_quality_index,
        )
    except ImportError:
        print("torchmetrics not installed (pip install torchmetrics); no comparison")
        return 0
    torch.set_num_threads(args.threads)
    xt = torch.from_numpy(x).permute(2, 0, 1).unsqueeze(0).contiguous()
    yt = torch.from_numpy(y).permute(2, 0, 1).unsqueeze(0).contiguous()

    def tm_set():
        with torch.no_grad():
            return {
                "psnr": float(peak_signal_noise_ratio(yt, xt, data_range=1.0, dim=(2, 3))),
                "ssim": float(structural_similarity_index_measure(
                    yt, xt, gaussian_kernel=True, sigma=1.5, kernel_size=11, data_range=1.0)),
                "sam_deg": float(spectral_angle_mapper(yt, xt)) * 180 / np.pi,
                "ergas": float(error_relative_global_dimensionless_synthesis(yt, xt, ratio=4)),
                "uiqi_gauss11": float(universal_image_quality_index(yt, xt)),
            }

    print(f"torchmetrics {torchmetrics.__version__}, torch {torch.__version__}:",
          {k: round(v, 6) for k, v in tm_set().items()})
    t_tm, c_tm = timed(tm_set, args.repeats)
    # ours again, right after, so that a change of machine load shows up as a spread
    t_ours2, c_ours2 = timed(lambda: metrics.evaluate(x, y, 4), args.repeats)
    print(f"torchmetrics set: median {t_tm * 1e3:.1f} ms wall, {c_tm * 1e3:.1f} ms CPU")
    print(f"ours (second measurement): median {t_ours2 * 1e3:.1f} ms wall, {c_ours2 * 1e3:.1f} ms CPU")
    t_ours_m = statistics.median([t_ours, t_ours2])
    c_ours_m = statistics.median([c_ours, c_ours2])
    print(f"ratio torchmetrics / ours: {t_tm / t_ours_m:.1f}x wall time "
          f"(ours {min(t_ours, t_ours2) * 1e3:.0f}-{max(t_ours, t_ours2) * 1e3:.0f} ms), "
          f"{c_tm / c_ours_m:.1f}x CPU time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
