"""Speed, peak memory and quality of the linear (non-learned) fusion methods.

Methods: upsample and GSA (references), the MRA methods SFIM, MTF-GLP and MTF-GLP-HPM, and the
model-based HySure, FUSE, CNMF and LTMR.

One ``--size``×``--size``×31 synthetic scene (hmifbench.datasets.synthetic, seed 0; 512 by
default) degraded by the ``gauss-fwhm-x8`` protocol (Gaussian PSF with a one-LR-pixel FWHM,
Nikon D700 SRF, reflect101 borders, no noise). Each method runs in the known setting (PSF and
SRF given) and the blind one (neither given: HySure and CNMF estimate them themselves, FUSE and
LTMR through ``hmifbench.methods._blind.estimate_degradation``; the MRA methods and GSA do not
use them).

Every run is a fresh child process pinned to ``--cores`` CPU cores with BLAS/OpenMP limited to
as many threads. Peak memory is the process's peak resident set during ``fuse`` (VmHWM, reset
just before the call; it includes the interpreter, libraries and the inputs already resident,
shown as the "baseline" in parentheses). ``getrusage``'s ru_maxrss is not used: it keeps the
parent's peak across fork + exec. Times are the wall clock of ``fuse`` alone (seed 0), after a
warm-up fuse on an 8×8-LR-pixel crop with cheap per-method parameters (lazy imports such as
scipy.optimize / scipy.fft and first-call costs), median of ``--repeat`` runs; every run's
time is listed. On a machine shared with other jobs the times vary a lot: the load average is
printed at the start and the end, and recorded per row in the JSON.

Targets (issue 5: one 512×512×31 scene at ×8 on 2 cores): SFIM, MTF-GLP (and MTF-GLP-HPM)
≤ 1 s, FUSE ≤ 5 s, CNMF ≤ 60 s, HySure ≤ 120 s, LTMR ≤ 300 s, peak memory < 2 GB each. The
target column is only meaningful at the default size and core count.

``--cave`` adds the real CAVE crops of ../shared/data/real (cropped to a multiple of 8, same
protocol), one run each, for quality; ``--no-synthetic`` skips the synthetic timing scene.

Usage: python benchmarks/bench_linear.py [--methods ...] [--settings known blind] [--repeat 3]
       [--cores 2] [--size 512] [--cave] [--no-synthetic] [--json out.json]
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
METHODS = ["upsample", "gsa", "sfim", "mtf_glp", "mtf_glp_hpm", "hysure", "fuse", "cnmf", "ltmr"]
TARGET_S = {"sfim": 1.0, "mtf_glp": 1.0, "mtf_glp_hpm": 1.0, "fuse": 5.0, "cnmf": 60.0,
            "hysure": 120.0, "ltmr": 300.0}
TARGET_MB = 2048
PROTOCOL = "gauss-fwhm-x8"
WARMUP_CROP = 8  # LR pixels
WARMUP_PARAMS = {"hysure": {"iterations": 2},
                 "cnmf": {"endmembers": 3, "inner_iterations": 2},
                 "ltmr": {"iterations": 1, "kmeans_iterations": 1}}


def child(pair_path: str, method: str, setting: str) -> None:
    """Run one fuse in this (fresh) process and print a JSON record."""
    import time

    import numpy as np

    from hmifbench.methods import FusionProblem, get
    from hmifbench.metrics import evaluate

    data = np.load(pair_path)
    known = setting == "known"
    s = int(data["scale"])
    degradation = {"psf": data["psf"] if known else None, "srf": data["srf"] if known else None}
    # Warm-up on a tiny pair: lazy imports and NumPy/SciPy first-call costs are paid once per
    # process, not per megapixel; they are not part of the timing.
    c = WARMUP_CROP
    tiny = FusionProblem(data["lr_hsi"][:c, :c], data["hr_msi"][:c * s, :c * s], s, **degradation)
    get(method, **WARMUP_PARAMS.get(method, {})).fuse(tiny, seed=0)
    problem = FusionProblem(data["lr_hsi"], data["hr_msi"], s, **degradation)
    baseline_mb = _status_mb("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    fused = get(method).fuse(problem, seed=0)
    seconds = time.perf_counter() - start
    peak_mb = _status_mb("VmHWM")
    scores = evaluate(data["truth"], np.clip(fused.hr_hsi, 0, 1), s)
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
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux ≥ 4.0)."""
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
            f"from benchmarks.bench_linear import child; child({str(pair_path)!r}, {method!r}, {setting!r})")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=False)
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
    """The real CAVE crops in ../shared/data/real, cropped to a multiple of 8 (none if absent)."""
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
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--settings", nargs="+", default=["known", "blind"], choices=["known", "blind"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--size", type=int, default=512, help="synthetic scene side (multiple of 8)")
    ap.add_argument("--cave", action="store_true", help="add the real CAVE crops (quality only)")
    ap.add_argument("--no-synthetic", action="store_true", help="skip the synthetic timing scene")
    ap.add_argument("--json", default=None, help="write every record to this file")
    args = ap.parse_args()

    from hmifbench.datasets.synthetic import make_scene

    cores = sorted(os.sched_getaffinity(0))[: args.cores]
    print(f"cores {cores} of {os.cpu_count()}; load average {os.getloadavg()}; protocol {PROTOCOL}")
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        pair_path = Path(tmp) / "pair.npz"
        if not args.no_synthetic:
            save_pair(make_scene(seed=0, size=args.size), pair_path)
            print(f"\n{args.size}×{args.size}×31 synthetic, ×8 — median of {args.repeat} runs\n")
            print("| method | setting | time s (median) | runs | peak MB (baseline) | PSNR | SAM "
                  "| iterations | target |")
            print("|---|---|---|---|---|---|---|---|---|")
        for method in ([] if args.no_synthetic else args.methods):
            for setting in args.settings:
                runs = [run_child(pair_path, method, setting, cores) for _ in range(args.repeat)]
                failed = [r for r in runs if "error" in r]
                if failed:
                    print(f"| {method} | {setting} | failed: {failed[0]['error']} |")
                    continue
                seconds = [r["seconds"] for r in runs]
                rec = dict(runs[0], seconds=statistics.median(seconds), all_seconds=seconds,
                           peak_mb=max(r["peak_mb"] for r in runs), scene=f"synthetic{args.size}",
                           load=os.getloadavg()[0])
                records.append(rec)
                limit = TARGET_S.get(method)
                ok = "" if limit is None else (
                    "ok" if rec["seconds"] <= limit and rec["peak_mb"] < TARGET_MB else "MISSED")
                print(f"| {method} | {setting} | {rec['seconds']:.2f} | "
                      f"{', '.join(f'{s:.2f}' for s in seconds)} | "
                      f"{rec['peak_mb']:.0f} ({rec['baseline_mb']:.0f}) | "
                      f"{rec['psnr']:.2f} | {rec['sam']:.2f} | {rec['iterations'] if rec['iterations'] is not None else '—'} | {ok} |",
                      flush=True)
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
    print(f"\nload average at the end {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
