"""The CPU proof of a deep method on the real CAVE crops (shared by every ``proof_*.py``).

Each crop in ../shared/data/real/cave_* (variable ``Omsi``, 31 bands at 400–700 nm) is cut to
a multiple of the scale from its top-left corner (rows and columns separately: 100² → 96²,
150² → 144² at ×8) and degraded with ``gauss-fwhm-x8`` (Gaussian PSF of FWHM one LR pixel,
Nikon D700 SRF, reflect101, no noise); the deep method and the linear references run on the
pair in the chosen setting; PSNR (peak 1, mean over bands) and SAM (degrees) come from
``hmifbench.metrics.evaluate`` (canonical profile, no border crop) on the estimate clipped to
[0, 1]. The table reports the deep method's wall and process-CPU time (the CPU time is the
steadier figure on a shared machine; the load average is printed) and iterations, and
``upsample``, ``gsa`` and the best linear method (by PSNR) for comparison.

A method's proof script may pass a ``curve`` recorder (see :class:`Curve`): PSNR and SAM of
the method's current estimate every so many iterations, printed under the table.
"""

from __future__ import annotations

import glob
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PROTOCOL = "gauss-fwhm-x8"
WAVELENGTHS = np.arange(400.0, 701.0, 10.0)
LINEAR = ["upsample", "gsa", "sfim", "mtf_glp", "mtf_glp_hpm", "hysure", "fuse", "cnmf", "ltmr"]


def real_dir() -> Path:
    """../shared/data/real next to the checkout (a worktree under /work/wt: two levels up)."""
    for base in (REPO.parent, REPO.parent.parent):
        if (base / "shared" / "data" / "real").is_dir():
            return base / "shared" / "data" / "real"
    return REPO.parent / "shared" / "data" / "real"


def cut_to_scale(x: np.ndarray, scale: int) -> np.ndarray:
    """The top-left part of ``x`` whose rows and columns are multiples of ``scale``."""
    rows, cols = x.shape[0] // scale * scale, x.shape[1] // scale * scale
    return np.ascontiguousarray(x[:rows, :cols])


def cave_cubes(names=None, scale: int = 8, data=None):
    """(name, Cube) for each CAVE crop, cut to a multiple of ``scale``; nothing when absent.

    ``names``: substrings of the crop folders to keep (all when empty); ``data``: the folder
    holding the ``cave_*`` crops (default :func:`real_dir`).
    """
    import scipy.io

    from hmifbench import Cube

    for folder in sorted(glob.glob(str(Path(data or real_dir()) / "cave_*"))):
        name = Path(folder).name
        if names and not any(n in name for n in names):
            continue
        x = scipy.io.loadmat(sorted(glob.glob(folder + "/*.mat"))[0])["Omsi"].astype(np.float32)
        yield name, Cube(cut_to_scale(x, scale), WAVELENGTHS)


def problem_of(cube, setting: str, protocol: str = PROTOCOL):
    """The FusionProblem of ``cube`` degraded by ``protocol``; the true PSF/SRF when known."""
    from hmifbench.datasets import degrade
    from hmifbench.methods import FusionProblem

    pair = degrade(cube, protocol, seed=0)
    t = pair.truth
    known = setting == "known"
    return FusionProblem(pair.lr_hsi.data, pair.hr_msi.data, t["scale"], wavelengths=cube.wavelengths,
                         psf=np.asarray(t["psf"]) if known else None,
                         srf=np.asarray(t["srf"]) if known else None,
                         offset=t["offset"], border=t["border"])


def score(truth, estimate, scale):
    """(PSNR, SAM) of ``estimate`` clipped to [0, 1]."""
    from hmifbench.metrics import evaluate

    s = evaluate(truth, np.clip(estimate, 0, 1), scale)
    return s["psnr"], s["sam"]


class Curve:
    """PSNR/SAM of a method's running estimate every ``every`` iterations.

    ``estimate(problem)`` returns the current (H, W, B) estimate for the problem being fused,
    or None (not yet available); a proof script sets it up (e.g. by keeping a reference to
    the network) and :func:`run_method` passes :meth:`progress` to ``fuse``. Points are
    (iteration, PSNR, SAM, CPU seconds since the start of the fusion).
    """

    def __init__(self, every: int, estimate=None):
        self.every, self.estimate, self.points = int(every), estimate, []
        self.truth = self.problem = None
        self.cpu0 = time.process_time()

    def start(self, truth, problem) -> None:
        self.truth, self.problem, self.points = truth, problem, []
        self.cpu0 = time.process_time()

    def progress(self, done: int, total: int, losses: dict) -> None:
        if done % self.every and done != total:
            return
        x = self.estimate(self.problem) if self.estimate is not None else None
        if x is not None:
            cpu = time.process_time() - self.cpu0
            self.points.append((done, *score(self.truth, x, self.problem.scale), cpu))

    def table(self) -> str:
        return "\n".join(f"  it {i:6d}  PSNR {p:6.2f}  SAM {s:5.2f}  CPU s {c:7.1f}"
                         for i, p, s, c in self.points)


def run_method(name, params, problem, truth, seed=0, curve: Curve | None = None, threads=None):
    """Fuse with ``name`` at ``params``; scores, wall and CPU seconds, iterations."""
    from hmifbench import methods

    method = methods.get(name, **params)
    if threads is not None:
        # The metrics' numba kernels set the thread count of the OpenMP runtime torch shares,
        # so torch's own setting does not survive a scoring: set it again before each run.
        import torch

        torch.set_num_threads(threads)
    if curve is not None:
        curve.start(truth, problem)
    start, cpu = time.perf_counter(), time.process_time()
    fused = method.fuse(problem, seed=seed, device="cpu",
                        progress=curve.progress if curve is not None else None)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    psnr, sam = score(truth, fused.hr_hsi, problem.scale)
    return {"method": name, "psnr": psnr, "sam": sam, "seconds": seconds, "cpu_seconds": cpu,
            "iterations": fused.iterations, "n_params": fused.n_params, "fused": fused}


def prove(method: str, params: dict, setting: str = "known", names=None, linear=LINEAR,
          threads: int = 2, curve: Curve | None = None, data=None) -> list[dict]:
    """Run the proof and print one markdown table; returns the rows.

    ``linear`` must start with ``upsample`` and ``gsa``; the best of the rest by PSNR is the
    "best linear" row. ``curve``: a :class:`Curve` recorder for the deep method, printed per
    crop. ``data``: the folder of the crops (default :func:`real_dir`).
    """
    import torch

    torch.set_num_threads(threads)
    print(f"{method} {params}\nsetting {setting}, protocol {PROTOCOL}, torch threads {threads}, "
          f"load average {os.getloadavg()}\n")
    print("| crop | method | PSNR | SAM | wall s | CPU s | iterations | beats upsample |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for name, cube in cave_cubes(names, data=data):
        problem = problem_of(cube, setting)
        refs = [run_method(m, {}, problem, cube.data) for m in linear]
        deep = run_method(method, params, problem, cube.data, curve=curve, threads=threads)
        up = refs[0]
        best = max(refs[2:] or refs, key=lambda r: r["psnr"])
        ok = deep["psnr"] > up["psnr"] and deep["sam"] < up["sam"]
        label = f"{name} {cube.data.shape[0]}²"
        for r, tag in ((up, "upsample"), (refs[1], "gsa"), (best, f"best linear: {best['method']}"),
                       (deep, method)):
            mark = ("yes" if ok else "NO") if r is deep else ""
            print(f"| {label} | {tag} | {r['psnr']:.2f} | {r['sam']:.2f} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | "
                  f"{r['iterations'] if r['iterations'] is not None else '—'} | {mark} |", flush=True)
        if curve is not None and curve.points:
            print(f"\n{name}: {method} PSNR/SAM vs iterations (CPU s since the start)\n"
                  f"{curve.table()}\n", flush=True)
        rows.append({"crop": name, "deep": deep, "upsample": up, "gsa": refs[1], "best": best,
                     "beats_upsample": ok, "curve": list(curve.points) if curve else None})
    print(f"\nload average at the end {os.getloadavg()}")
    return rows
