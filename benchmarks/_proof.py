"""Shared parts of the deep methods' CPU proofs: the three real CAVE crops at ×8 and the
linear baselines they are compared with (run on demand, not part of the test suite).

A crop folder (``cave_*_crop*``) holds one MATLAB file with the cube in variable ``Omsi``
(rows, cols, 31 bands, 400–700 nm). Each crop is cut to a multiple of the scale from its
top-left corner, degraded with the suite's protocol and scored with the canonical metrics.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "real"
WAVELENGTHS = np.arange(400.0, 701.0, 10.0)
LINEAR = ("upsample", "gsa", "sfim", "mtf_glp", "mtf_glp_hpm", "hysure", "fuse", "cnmf", "ltmr")


def cave_crops(data: Path) -> dict:
    """{crop name: Cube} of every ``cave_*`` folder under ``data``."""
    import scipy.io

    from hmifbench.cube import Cube

    crops = {}
    for folder in sorted(Path(data).glob("cave_*")):
        mats = sorted(folder.glob("*.mat"))
        if mats:
            crops[folder.name] = Cube(scipy.io.loadmat(mats[0])["Omsi"].astype(np.float32),
                                      WAVELENGTHS)
    if not crops:
        raise SystemExit(f"no cave_* crops under {data} (pass --data)")
    return crops


def problem_of(cube, protocol: str, setting: str = "known"):
    """(FusionProblem, ground truth) of ``cube`` cut to a multiple of the scale."""
    from hmifbench.cube import Cube
    from hmifbench.datasets import degrade
    from hmifbench.datasets.protocols import get_protocol
    from hmifbench.methods import FusionProblem

    s = get_protocol(protocol).scale
    rows, cols = (np.asarray(cube).shape[0] // s) * s, (np.asarray(cube).shape[1] // s) * s
    truth = Cube(np.asarray(cube)[:rows, :cols], cube.wavelengths)
    pair = degrade(truth, protocol)
    t = pair.truth
    known = setting == "known"
    problem = FusionProblem(pair.lr_hsi, pair.hr_msi, t["scale"], wavelengths=cube.wavelengths,
                            psf=t["psf"] if known else None, srf=t["srf"] if known else None,
                            offset=t["offset"], border=t["border"])
    return problem, truth.data


def score(truth, estimate, scale) -> dict:
    from hmifbench.metrics import evaluate

    return evaluate(truth, estimate, scale)


def linear_baselines(problem, truth, methods=LINEAR) -> dict:
    """{method: (scores, seconds)} of the linear methods at their defaults."""
    from hmifbench import registry

    out = {}
    for name in methods:
        t0 = time.perf_counter()
        fused = registry.get(name).fuse(problem)
        out[name] = (score(truth, fused.hr_hsi, problem.scale), time.perf_counter() - t0)
    return out


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()
    except OSError:
        return "n/a"


def row(name: str, scores: dict, seconds: float, iterations="") -> str:
    return (f"  {name:<12} PSNR {scores['psnr']:6.2f}  SAM {scores['sam']:5.2f}  "
            f"ERGAS {scores['ergas']:6.2f}  {seconds:7.1f} s  {iterations}")
