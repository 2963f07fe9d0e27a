"""CPU proof of CUCaNet on the three real CAVE crops at ×8 (run on demand).

    python benchmarks/proof_cucanet.py [--crops balloons chart_toy feathers] [--threads 2]
        [--iterations N] [--width W] [--endmembers K] [--lr LR] [--setting known|blind]
        [--linear all|gsa|none]
    python benchmarks/proof_cucanet.py --flops

``--flops`` prints the forward FLOPs of the paper-size network (width 512, K 128) at 512²
×32, 512² ×8 and 128² ×8 (``hmifbench.metrics.cost.count_flops`` on the meta device: shapes
only, nothing computed) and exits.

Each crop (``cave_*_crop*`` under ``../shared/data/real``, variable ``Omsi``, 31 bands at
400–700 nm) is cut to a multiple of 8 (centred) and degraded with ``gauss-fwhm-x8``; CUCaNet
runs at the given CPU budget next to ``upsample``, ``gsa`` and the other linear methods
(``--linear all``; the best of them by PSNR is reported as "best linear"). Prints one table
row per crop and method: PSNR (dB), SAM (degrees), wall and process-CPU seconds (the CPU time
is the steadier figure on a shared machine), iterations, and the load average.
Run one crop at a time on a shared machine (``--crops balloons``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

CROPS = {"balloons": "cave_balloons_crop100", "chart_toy": "cave_chart_toy_crop150",
         "feathers": "cave_feathers_crop150"}
LINEAR = ("gsa", "sfim", "mtf_glp", "mtf_glp_hpm", "hysure", "fuse", "cnmf", "ltmr")
SCALE = 8


def real_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    for base in (here.parent / "shared", here.parent.parent / "shared", Path("/work/shared")):
        if (base / "data" / "real").is_dir():
            return base / "data" / "real"
    sys.exit("no ../shared/data/real next to the checkout")


def load_crop(name: str):
    from scipy.io import loadmat

    from hmifbench import Cube

    data = loadmat(real_dir() / CROPS[name] / next(
        p.name for p in (real_dir() / CROPS[name]).glob("*.mat")))["Omsi"].astype(np.float32)
    rows, cols = (n - n % SCALE for n in data.shape[:2])
    r0, c0 = (data.shape[0] - rows) // 2, (data.shape[1] - cols) // 2
    cube = np.ascontiguousarray(data[r0:r0 + rows, c0:c0 + cols])
    return Cube(cube, np.arange(400.0, 701.0, 10.0))


def problem_of(cube, setting: str):
    from hmifbench.datasets import degrade
    from hmifbench.methods import FusionProblem

    pair = degrade(cube, "gauss-fwhm-x8")
    t = pair.truth
    known = setting == "known"
    return FusionProblem(pair.lr_hsi, pair.hr_msi, t["scale"], wavelengths=cube.wavelengths,
                         psf=np.asarray(t["psf"]) if known else None,
                         srf=np.asarray(t["srf"]) if known else None,
                         offset=t["offset"], border=t["border"])


def score(method: str, params: dict, problem, truth, save: str = "") -> dict:
    from hmifbench import methods, metrics

    m = methods.get(method, **params)
    start, cpu = time.perf_counter(), time.process_time()
    fused = m.fuse(problem, seed=0, device="cpu")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    s = metrics.evaluate(truth, fused.hr_hsi, problem.scale)
    if save:
        np.save(save, fused.hr_hsi)
    if fused.extras.get("final_losses"):
        print(f"# {method} final losses: "
              + ", ".join(f"{k} {v:.4g}" for k, v in fused.extras["final_losses"].items()))
    return {"method": method, "psnr": s["psnr"], "sam": s["sam"], "seconds": seconds, "cpu_s": cpu,
            "iterations": fused.iterations, "n_params": fused.n_params}


def print_flops() -> None:
    import torch

    from hmifbench.methods.cucanet import network as N
    from hmifbench.metrics.cost import count_flops

    for size, s in ((512, 32), (512, 8), (128, 8)):
        with torch.device("meta"):
            net = N.CUCaNet(31, 3, s, (size // s, size // s))
            yh, ym = torch.empty(1, 31, size // s, size // s), torch.empty(1, 3, size, size)
        f = count_flops(net, yh, ym)
        print(f"{size}² ×{s}: forward {f['flops'] / 1e9:.1f} GFLOPs ({f['macs'] / 1e9:.1f} GMACs)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--crops", nargs="+", default=list(CROPS), choices=list(CROPS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=600)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--endmembers", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--setting", choices=["known", "blind"], default="known")
    ap.add_argument("--linear", choices=["all", "gsa", "none"], default="all")
    ap.add_argument("--abundance", choices=["clamp", "softmax"], default="clamp")
    ap.add_argument("--save", default="", help="folder to save each crop's CUCaNet output (.npy)")
    ap.add_argument("--no-cucanet", action="store_true", help="only the comparison methods")
    ap.add_argument("--flops", action="store_true")
    args = ap.parse_args(argv)
    if args.flops:
        print_flops()
        return

    import torch

    torch.set_num_threads(args.threads)
    params = {"iterations": args.iterations, "width": args.width,
              "endmembers": args.endmembers, "lr": args.lr, "abundance": args.abundance}
    linear = {"all": LINEAR, "gsa": ("gsa",), "none": ()}[args.linear]
    print(f"# cucanet {params}, setting {args.setting}, {args.threads} threads")
    print("crop       method        PSNR    SAM    wall s  CPU s   iters")
    for name in args.crops:
        cube = load_crop(name)
        problem = problem_of(cube, args.setting)
        rows = [score("upsample", {}, problem, cube.data)]
        rows += [score(m, {}, problem, cube.data) for m in linear]
        save = str(Path(args.save) / f"cucanet_{name}.npy") if args.save else ""
        if not args.no_cucanet:
            rows.append(score("cucanet", params, problem, cube.data, save))
        for r in rows:
            print(f"{name:10s} {r['method']:12s} {r['psnr']:6.2f} {r['sam']:6.2f} "
                  f"{r['seconds']:7.1f} {r['cpu_s']:7.1f} {r['iterations'] or '':>6}")
        lin = [r for r in rows if r["method"] in LINEAR and r["method"] != "gsa"]
        if lin:
            best = max(lin, key=lambda r: r["psnr"])
            print(f"{name:10s} best linear: {best['method']} {best['psnr']:.2f} dB "
                  f"{best['sam']:.2f}°")
        print(f"# loadavg {open('/proc/loadavg').read().strip()}", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
