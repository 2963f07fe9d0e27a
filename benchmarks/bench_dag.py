"""How long Snakemake takes to build the DAG of a large configuration (dry run).

Default shape: 3 datasets × 5 degradations × 10 method entries × the datasets' test scenes,
taking the first three registered of cave, harvard, ntire2018 and synthetic (it prints which).
Real datasets only need their download rule in a dry run, so nothing is fetched.

Usage: python benchmarks/bench_dag.py [--datasets cave harvard synthetic] [--entries 10]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def make_config(datasets, degradations, n_entries):
    methods = {}
    for i in range(n_entries):
        base = ("upsample", "gsa")[i % 2]
        methods[f"{base}-v{i}"] = {"method": base, "params": {} if base == "upsample" else {"ridge": 10.0 ** -(i + 1)}}
    return {"datasets": {d: ({"split": "test"} if d != "synthetic" else {"scenes": [f"scene{i:02d}" for i in range(1, 13)]})
                         for d in datasets},
            "degradations": degradations, "methods": methods}


def time_dry_run(config: dict) -> tuple[str, float]:
    """(number of jobs, seconds) of ``snakemake -n`` on ``config`` in a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        exe = Path(sys.executable).with_name("snakemake")
        start = time.perf_counter()
        out = subprocess.run([str(exe), "-s", str(REPO / "Snakefile"), "--directory", tmp,
                              "--configfile", str(path), "-n", "--quiet", "rules"],
                             capture_output=True, text=True)
        elapsed = time.perf_counter() - start
    if out.returncode:
        sys.exit(out.stderr[-2000:])
    total = [ln for ln in out.stdout.splitlines() if ln.strip().startswith("total")]
    return (total[-1].split()[-1] if total else "?"), elapsed


def main():
    from hmifbench.datasets import DATASETS, PROTOCOLS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=None)
    ap.add_argument("--entries", type=int, default=10)
    args = ap.parse_args()
    datasets = args.datasets or [d for d in ("cave", "harvard", "ntire2018", "synthetic") if d in DATASETS][:3]
    degradations = [p for p in ("gauss-fwhm-x4", "gauss-fwhm-x8", "gauss-fwhm-x16", "mossfuse-x32",
                                "noisy-35-40") if p in PROTOCOLS]
    config = make_config(datasets, degradations, args.entries)
    jobs, elapsed = time_dry_run(config)
    print(f"datasets={datasets} degradations={len(degradations)} entries={args.entries}")
    print(f"jobs: {jobs}; dry run (DAG build) took {elapsed:.1f} s")


if __name__ == "__main__":
    main()
