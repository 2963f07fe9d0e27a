"""Speed, peak memory and quality of the MRA methods (SFIM, MTF-GLP, MTF-GLP-HPM) and HySure.

One 512×512×31 synthetic scene (hmifbench.datasets.synthetic, seed 0) degraded by the
``gauss-fwhm-x8`` protocol (Gaussian PSF with a one-LR-pixel FWHM, Nikon D700 SRF, no noise);
each method runs in the known setting (PSF and SRF given) and the blind one (neither given).
Every run is a fresh child process pinned to ``--cores`` CPU cores with BLAS/OpenMP/FFT limited
to as many threads. Peak memory is the process's peak resident set during ``fuse`` (VmHWM,
reset just before the call; it includes the interpreter, libraries and the inputs already
resident, the "baseline" column). Times are the wall clock of ``fuse`` alone, after a
warm-up fuse on a 4×4-pixel crop (imports), median of ``--repeat`` runs.

Targets (issue 5, 2 cores): SFIM and MTF-GLP ≤ 1 s, HySure ≤ 120 s, peak memory < 2 GB.

``--cave`` adds the real CAVE crops of ../shared/data/real (cropped to a multiple of 8, same
protocol) for quality only (one run each).

Usage: python benchmarks/bench_linear_a.py [--repeat 3] [--cores 2] [--methods ...] [--cave]
       [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
METHODS = ["upsample", "gsa", "sfim", "mtf_glp", "mtf_glp_hpm", "hysure"]
TARGET_S = {"sfim": 1.0, "mtf_glp": 1.0, "mtf_glp_hpm": 1.0, "hysure": 120.0}
TARGET_MB = 2048
PROTOCOL = "gauss-fwhm-x8"


def child(pair_path: str, method: str, setting: str) -> None:
    """Run one fuse in this (fresh) process and print a JSON record."""
    import time

    import numpy as np

    from hmifbench.methods import FusionProblem, get
    from hmifbench.metrics import evaluate

    data = np.load(pair_path)
    known = setting == "known"
    # Warm-up on a tiny pair: lazy imports (scipy.optimize, scipy.fft) and NumPy's first-call
    # costs are paid once per process, not per megapixel; they are not part of the timing.
    s = int(data["scale"])
    tiny = FusionProblem(data["lr_hsi"][:4, :4], data["hr_msi"][:4 * s, :4 * s], s,
                         psf=data["psf"] if known else None, srf=data["srf"] if known else None)
    get(method, **({"iterations": 2} if method == "hysure" else {})).fuse(tiny)
    problem = FusionProblem(data["lr_hsi"], data["hr_msi"], int(data["scale"]),
                            psf=data["psf"] if known else None, srf=data["srf"] if known else None)
    baseline_mb = _status_mb("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    fused = get(method).fuse(problem)
    seconds = time.perf_counter() - start
    peak_mb = _status_mb("VmHWM")
    scores = evaluate(data["truth"], np.clip(fused.hr_hsi, 0, 1), int(data["scale"]))
    print(json.dumps({"method": method, "setting": setting, "seconds": seconds, "peak_mb": peak_mb,
                      "baseline_mb": baseline_mb,
                      "psnr": scores["psnr"], "sam": scores["sam"], "ergas": scores["ergas"],
                      "iterations": fused.iterations}))


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux ≥ 4.0). getrusage's
    ru_maxrss cannot be used: it keeps the parent's peak across fork + exec."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def run_child(pair_path: Path, method: str, setting: str, cores: list[int]) -> dict:
    env = dict(os.environ)
    n = str(len(cores))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = n
    code = (f"import os, sys; os.sched_setaffinity(0, {cores!r}); sys.path.insert(0, {str(REPO)!r}); "
            f"from benchmarks.bench_linear_a import child; child({str(pair_path)!r}, {method!r}, {setting!r})")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"method": method, "setting": setting, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def save_pair(cube, path: Path) -> None:
    import numpy as np

    from hmifbench.datasets import degrade

    pair = degrade(cube, PROTOCOL, seed=0)
    np.savez(path, lr_hsi=pair.lr_hsi.data, hr_msi=pair.hr_msi.data, truth=cube.data,
             psf=np.asarray(pair.truth["psf"]), srf=np.asarray(pair.truth["srf"]),
             scale=pair.truth["scale"])


def cave_cubes():
    import glob

    import numpy as np
    import scipy.io

    from hmifbench import Cube

    real = REPO.parent / "shared" / "data" / "real"
    for folder in sorted(glob.glob(str(real / "cave_*"))):
        mat = glob.glob(folder + "/*.mat")[0]
        x = scipy.io.loadmat(mat)["Omsi"].astype(np.float32)
        n = min(x.shape[:2]) // 8 * 8
        yield Path(folder).name, Cube(x[:n, :n], np.arange(400.0, 701.0, 10.0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--settings", nargs="+", default=["known", "blind"])
    ap.add_argument("--cave", action="store_true")
    ap.add_argument("--no-synthetic", action="store_true", help="skip the 512² timing scene")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from hmifbench.datasets.synthetic import make_scene

    cores = sorted(os.sched_getaffinity(0))[: args.cores]
    print(f"cores {cores} of {os.cpu_count()}; load average {os.getloadavg()}; protocol {PROTOCOL}")
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        pair_path = Path(tmp) / "pair.npz"
        if not args.no_synthetic:
            save_pair(make_scene(seed=0, size=512), pair_path)
            print("\n512×512×31 synthetic, ×8 — median of", args.repeat, "runs\n")
            print("| method | setting | time s (median) | runs | peak MB (baseline) | PSNR | SAM | target |")
            print("|---|---|---|---|---|---|---|---|")
        for method in ([] if args.no_synthetic else args.methods):
            for setting in args.settings:
                runs = [run_child(pair_path, method, setting, cores) for _ in range(args.repeat)]
                if "error" in runs[0]:
                    print(f"| {method} | {setting} | failed: {runs[0]['error']} |")
                    continue
                seconds = [r["seconds"] for r in runs]
                rec = dict(runs[0], seconds=statistics.median(seconds), all_seconds=seconds,
                           peak_mb=max(r["peak_mb"] for r in runs), scene="synthetic512")
                records.append(rec)
                limit = TARGET_S.get(method)
                ok = "" if limit is None else (
                    "ok" if rec["seconds"] <= limit and rec["peak_mb"] < TARGET_MB else "MISSED")
                print(f"| {method} | {setting} | {rec['seconds']:.2f} | "
                      f"{', '.join(f'{s:.2f}' for s in seconds)} | {rec['peak_mb']:.0f} ({rec['baseline_mb']:.0f}) | "
                      f"{rec['psnr']:.2f} | {rec['sam']:.2f} | {ok} |", flush=True)
        if args.cave:
            print("\nCAVE crops (../shared/data/real), ×8, one run each\n")
            print("| scene | method | setting | time s | PSNR | SAM |")
            print("|---|---|---|---|---|---|")
            for name, cube in cave_cubes():
                save_pair(cube, pair_path)
                for method in args.methods:
                    for setting in args.settings:
                        r = run_child(pair_path, method, setting, cores)
                        if "error" in r:
                            print(f"| {name} | {method} | {setting} | failed: {r['error']} |")
                            continue
                        records.append(dict(r, scene=name))
                        print(f"| {name} {cube.data.shape[0]}² | {method} | {setting} | "
                              f"{r['seconds']:.2f} | {r['psnr']:.2f} | {r['sam']:.2f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
