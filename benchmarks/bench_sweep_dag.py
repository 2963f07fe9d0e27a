"""How long Snakemake takes to build the DAG of a robustness sweep (dry run).

Shape: one sweep of ``--values`` PSF σ values × ``--entries`` method entries × ``--scenes``
synthetic scenes (default 10 × 10 × 10), plus the base protocol. Nothing is computed.

Usage: python benchmarks/bench_sweep_dag.py [--values 10] [--entries 10] [--scenes 10]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench_dag import time_dry_run  # benchmarks/ is on the path when this script runs


def make_config(n_values: int, n_entries: int, n_scenes: int) -> dict:
    settings = ("known", "nominal", "blind")
    methods = {f"fuse-{i}": {"method": "fuse", "setting": settings[i % 3]} for i in range(n_entries)}
    sigmas = [round(1.0 + 0.2 * i, 3) for i in range(n_values)]
    return {"datasets": {"synthetic": {"scenes": [f"scene{i:02d}" for i in range(1, n_scenes + 1)],
                                       "options": {"size": 64}}},
            "degradations": ["gauss-fwhm-x4"],
            "sweeps": {"psf-sigma": {"base": "gauss-fwhm-x4", "field": "psf.sigma", "values": sigmas}},
            "methods": methods}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--values", type=int, default=10)
    ap.add_argument("--entries", type=int, default=10)
    ap.add_argument("--scenes", type=int, default=10)
    args = ap.parse_args()
    jobs, elapsed = time_dry_run(make_config(args.values, args.entries, args.scenes))
    print(f"values={args.values} entries={args.entries} scenes={args.scenes}")
    print(f"jobs: {jobs}; dry run (DAG build) took {elapsed:.1f} s")
    print("load average:", Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else "?")


if __name__ == "__main__":
    main()
