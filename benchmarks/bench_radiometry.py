"""Blind fusion with MSI gains and offsets: PSNR / SAM against the same pair without them.

The table of issue 18, re-measured on the real CAVE crops of ../shared/data/real (or
``$HMIFBENCH_REAL_DATA``; the CAVE
cloth scene of the issue is not among them): a ``--size`` crop (top-left) of each scene, ×s,
the Gaussian PSF whose FWHM is one LR pixel, the Nikon D700 SRF, no noise, blind setting. The
MSI is made as ``g_j · (SRF · X)_j + o_j`` in three rows: unit gain and no offset; gains
1.3, 0.8, 1.1; the same gains and offsets 0.05. The gain step is written out with numpy here
(the same formula as ``hmifbench.observation.apply_radiometry``) so that the script also runs
against a checkout without the radiometric model, for a before/after comparison.

Usage: python benchmarks/bench_radiometry.py [--scale 4] [--size 128] [--scenes chart_toy ...]
       [--methods upsample gsa ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("HMIFBENCH_REAL_DATA") or REPO.parent / "shared" / "data" / "real")
ROWS = {"unit gain, no offset": (None, None),
        "gains 1.3, 0.8, 1.1": ([1.3, 0.8, 1.1], None),
        "same gains, offset 0.05": ([1.3, 0.8, 1.1], [0.05, 0.05, 0.05])}
METHODS = ["upsample", "gsa", "mtf_glp", "fuse", "cnmf", "hysure", "ltmr"]


def cave_crop(scene: str, size: int):
    """The top-left ``size``² crop of a CAVE crop file, as a Cube (400–700 nm)."""
    import scipy.io

    from hmifbench.cube import Cube

    path = next(SHARED.glob(f"cave_{scene}_crop*/*.mat"))
    x = scipy.io.loadmat(path)["Omsi"][:size, :size].astype(np.float32)
    return Cube(x, 400.0 + 10.0 * np.arange(x.shape[2]))


def main(argv=None):
    from hmifbench.datasets.protocols import degrade
    from hmifbench.method import FusionProblem
    from hmifbench.methods import get
    from hmifbench.metrics import psnr, sam

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--scenes", nargs="+", default=["chart_toy", "feathers"])
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    print("load average:", open("/proc/loadavg").read().strip())
    records = []
    for scene in args.scenes:
        truth = cave_crop(scene, args.size)
        pair = degrade(truth, f"gauss-fwhm-x{args.scale}")
        for row, (gain, offset) in ROWS.items():
            msi = np.asarray(pair.hr_msi.data, dtype=np.float64)
            msi = msi * np.asarray(gain or 1.0) + np.asarray(offset or 0.0)
            problem = FusionProblem(pair.lr_hsi, msi.astype(np.float32), args.scale)
            for name in args.methods:
                t0 = time.perf_counter()
                fused = get(name).fuse(problem)
                rec = {"scene": scene, "row": row, "method": name,
                       "psnr": float(psnr(truth.data, fused.hr_hsi)),
                       "sam": float(sam(truth.data, fused.hr_hsi)),
                       "seconds": time.perf_counter() - t0,
                       "msi_gain": None, "msi_offset": None}
                for key in ("msi_gain", "msi_offset"):
                    value = getattr(fused, key, None)
                    if value is not None:
                        rec[key] = np.round(np.asarray(value), 4).tolist()
                records.append(rec)
                print(json.dumps(rec), flush=True)
    print("load average:", open("/proc/loadavg").read().strip())
    for scene in args.scenes:
        print(f"\n{scene} ({args.size}×{args.size}, ×{args.scale}), PSNR dB / SAM °")
        print("| MSI | " + " | ".join(args.methods) + " |")
        print("|---" * (len(args.methods) + 1) + "|")
        for row in ROWS:
            cells = [next(r for r in records if r["scene"] == scene and r["row"] == row
                          and r["method"] == m) for m in args.methods]
            print(f"| {row} | " + " | ".join(f"{c['psnr']:.1f} / {c['sam']:.1f}" for c in cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
