"""The CPU proof of a per-scene deep method on the real CAVE crops (shared by proof_*.py).

Each crop in ../shared/data/real/cave_* (cropped to a multiple of 8 from the top-left) is
degraded with ``gauss-fwhm-x8`` (Gaussian PSF of FWHM one LR pixel, Nikon D700 SRF,
reflect101, no noise); the deep method and the linear references run on the pair in the
chosen setting; PSNR (peak 1, mean over bands) and SAM (degrees) come from
``hmifbench.metrics.evaluate`` (canonical profile, no border crop). The table reports the deep
method's wall and process-CPU time (the CPU time is the steadier figure on a shared machine;
the load average is printed) and iterations, and ``upsample``, ``gsa`` and the best linear method (by
PSNR) for comparison.
"""

from __future__ import annotations

import glob
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PROTOCOL = "gauss-fwhm-x8"
LINEAR = ["upsample", "gsa", "sfim", "mtf_glp", "mtf_glp_hpm", "hysure", "fuse", "cnmf"]


def cave_cubes(names=None):
    """(name, Cube) for each CAVE crop, cut to a multiple of 8; nothing when the data is absent."""
    import scipy.io

    from hmifbench import Cube

    real = REPO.parent / "shared" / "data" / "real"
    if not real.is_dir():  # a worktree under /work/wt: the shared folder is two levels up
        real = REPO.parent.parent / "shared" / "data" / "real"
    for folder in sorted(glob.glob(str(real / "cave_*"))):
        name = Path(folder).name
        if names and not any(n in name for n in names):
            continue
        x = scipy.io.loadmat(glob.glob(folder + "/*.mat")[0])["Omsi"].astype(np.float32)
        n = min(x.shape[:2]) // 8 * 8
        yield name, Cube(x[:n, :n], np.arange(400.0, 701.0, 10.0))


def problem_of(cube, setting: str):
    from hmifbench.datasets import degrade
    from hmifbench.methods import FusionProblem

    pair = degrade(cube, PROTOCOL, seed=0)
    t = pair.truth
    known = setting == "known"
    return FusionProblem(pair.lr_hsi.data, pair.hr_msi.data, t["scale"],
                         psf=np.asarray(t["psf"]) if known else None,
                         srf=np.asarray(t["srf"]) if known else None,
                         offset=t["offset"], border=t["border"])


def score(truth, estimate, scale):
    from hmifbench.metrics import evaluate

    s = evaluate(truth, np.clip(estimate, 0, 1), scale)
    return s["psnr"], s["sam"]


def run_method(name, params, problem, truth, seed=0, threads=None):
    from hmifbench import methods

    method = methods.get(name, **params)
    if threads is not None:
        # The metrics' numba kernels set the thread count of the OpenMP runtime torch shares,
        # so torch's own setting does not survive a scoring: set it again before each run.
        import torch

        torch.set_num_threads(threads)
    start, cpu = time.perf_counter(), time.process_time()
    fused = method.fuse(problem, seed=seed, device="cpu")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    psnr, sam = score(truth, fused.hr_hsi, problem.scale)
    return {"method": name, "psnr": psnr, "sam": sam, "seconds": seconds, "cpu_seconds": cpu,
            "iterations": fused.iterations, "n_params": fused.n_params, "fused": fused}


def prove(method: str, params: dict, setting: str = "known", names=None, linear=LINEAR,
          threads: int = 2) -> list[dict]:
    """Run the proof and print one markdown table; returns the rows."""
    import torch

    torch.set_num_threads(threads)
    print(f"{method} {params}\nsetting {setting}, protocol {PROTOCOL}, torch threads {threads}, "
          f"load average {os.getloadavg()}\n")
    print("| crop | method | PSNR | SAM | wall s | CPU s | iterations | beats upsample |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for name, cube in cave_cubes(names):
        problem = problem_of(cube, setting)
        refs = [run_method(m, {}, problem, cube.data) for m in linear]
        deep = run_method(method, params, problem, cube.data, threads=threads)
        up = refs[0]
        best = max(refs[2:] or refs, key=lambda r: r["psnr"])
        ok = deep["psnr"] > up["psnr"] and deep["sam"] < up["sam"]
        label = f"{name} {cube.data.shape[0]}²"
        for r, tag in ((up, "upsample"), (refs[1], "gsa"), (best, f"best linear: {best['method']}"),
                       (deep, method)):
            mark = ("yes" if ok else "NO") if r is deep else ""
            print(f"| {label} | {tag} | {r['psnr']:.2f} | {r['sam']:.2f} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | "
                  f"{r['iterations'] if r['iterations'] is not None else '—'} | {mark} |", flush=True)
        rows.append({"crop": name, "deep": deep, "upsample": up, "gsa": refs[1], "best": best,
                     "beats_upsample": ok})
    print(f"\nload average at the end {os.getloadavg()}")
    return rows
