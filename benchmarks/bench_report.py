"""How long the report takes: `hmifbench report` on a paper-sized synthetic score set, and
`hmifbench report` + `hmifbench figures` on a finished run's results folder.

Targets (issue "The paper"): `hmifbench report` on the paper protocol's score files
(thousands of records) ≤ 60 s; tables, statistics and figures of the quick suite ≤ 30 s.

The synthetic score set: datasets × degradations × method entries × scenes score files with
the canonical profile's seven metrics drawn at random (a fixed seed), one run in fifty failed.
Default 4 × 6 × 10 × 15 = 3,600 records.

Usage:
    python benchmarks/bench_report.py                      # synthetic paper-sized score set
    python benchmarks/bench_report.py --records 8000       # scale the scene count up
    python benchmarks/bench_report.py --results results    # a finished run (e.g. the quick suite)
Run with OMP_NUM_THREADS unset, and note the load average (printed) when reporting a time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

METRICS = {"psnr": (35, 5), "ssim": (0.95, 0.03), "sam": (3, 1), "ergas": (2, 0.5),
           "rmse": (0.02, 0.005), "uiqi": (0.97, 0.02), "cc": (0.98, 0.01)}


def write_synthetic_scores(root: Path, datasets=4, degradations=6, entries=10, scenes=15, seed=0):
    rng = np.random.default_rng(seed)
    paths = []
    for d in range(datasets):
        for g in range(degradations):
            for e in range(entries):
                skill = rng.normal(0, 1)
                for s in range(scenes):
                    failed = rng.random() < 0.02
                    scores = {} if failed else {m: float(mu + sd * (0.5 * skill + rng.normal()))
                                                for m, (mu, sd) in METRICS.items()}
                    rec = {"dataset": f"data{d}", "degradation": f"deg{g}", "scene": f"scene{s:02d}",
                           "entry": f"method{e}", "method": "gsa" if e % 2 else "upsample",
                           "family": "deep" if e >= 7 else "linear", "setting": "known",
                           "status": "failed" if failed else "ok",
                           "error": "RuntimeError: x" if failed else None, "profile": "canonical",
                           "crop": 0, "scale": 4, "scores": scores,
                           "timing": {"fuse_s": float(rng.uniform(0.1, 100)), "peak_rss_mb": 500.0,
                                      "peak_gpu_mb": None}, "n_params": 1000 * e, "iterations": 100,
                           "cost": {"device": "cpu", "train_s": None, "flops": None},
                           "shape": [512, 512, 31]}
                    path = root / "scores" / rec["entry"] / rec["dataset"] / rec["degradation"] / f"{rec['scene']}.json"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps(rec))
                    paths.append(path)
    return paths


def timed(cmd) -> float:
    """Wall seconds of ``cmd``; prints its CPU seconds too (on a loaded machine the wall time
    overstates what the command costs)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{result.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"  {' '.join(cmd[3:5])}: wall {elapsed:.1f} s, CPU {cpu:.1f} s")
    return elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=None,
                    help="about this many synthetic records (scales the scenes per section)")
    ap.add_argument("--results", type=Path, default=None,
                    help="a finished run's results folder: time report and figures on it instead")
    args = ap.parse_args()
    cli = [sys.executable, "-m", "hmifbench.cli"]
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}, cpus: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.results is not None:
            listing = tmp / "scores.txt"
            scores = sorted(args.results.resolve().glob("scores/*/*/*/*.json"))
            listing.write_text("\n".join(map(str, scores)))
            t_tables = timed(cli + ["report", "--scores-from", str(listing), "-o", str(tmp / "tables")])
            t_figures = timed(cli + ["figures", "--scores-from", str(listing), "-o", str(tmp / "figures")])
            n_fig = len(list((tmp / "figures").glob("*.png")))
            print(f"{len(scores)} score files: hmifbench report {t_tables:.1f} s, hmifbench figures "
                  f"{t_figures:.1f} s ({n_fig} figures, PNG + PDF); together {t_tables + t_figures:.1f} s "
                  "(target ≤ 30 s)")
            return
        scenes = 15 if args.records is None else max(2, round(args.records / (4 * 6 * 10)))
        t0 = time.perf_counter()
        paths = write_synthetic_scores(tmp / "results", scenes=scenes)
        print(f"wrote {len(paths)} synthetic score files in {time.perf_counter() - t0:.1f} s")
        listing = tmp / "scores.txt"
        listing.write_text("\n".join(map(str, paths)))
        elapsed = timed(cli + ["report", "--scores-from", str(listing), "-o", str(tmp / "tables")])
        print(f"hmifbench report on {len(paths)} records: {elapsed:.1f} s (target ≤ 60 s)")


if __name__ == "__main__":
    main()
