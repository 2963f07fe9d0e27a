"""Training speed of the deep methods on CPU: seconds per iteration at 128² and 512².

    python benchmarks/bench_deep.py [--sizes 128 512] [--scale 8] [--threads 2]
        [--iterations 4] [--methods cucanet ...] [--set METHOD:PARAM=VALUE ...] [--json out.json]

Every registered method of family ``deep`` except ``mossfuse`` (which has its own
benchmarks/bench_mossfuse.py) is found through the registry. Each (method, size) runs in a
fresh subprocess, so its peak RSS is its own: a synthetic scene (``make_scene``, 31 bands) is
degraded with the suite's ``gauss-fwhm-x{scale}`` protocol (known setting) and the method runs
with its default parameters except that every integer parameter whose name contains
``iterations`` is set to ``--iterations`` (override with ``--set``, e.g.
``--set daem:adapt_iterations=4``). A method that trains on a dataset is timed in ``fit`` on
two such pairs, any other in ``fuse``.

The time per iteration is measured between the calls of the ``progress`` callback (which the
shared deep toolkit's loop calls after every step), leaving out the first step (warm-up) and
everything before and after the loop; it is the median over the remaining steps, in wall and
process-CPU seconds. Report the load average with the numbers on a shared machine (printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def deep_methods(exclude=("mossfuse",)) -> list[str]:
    from hmifbench import methods

    return [n for n in methods.available()
            if n not in exclude and methods.get_class(n).family == "deep"]


def _parse_sets(items) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for item in items or []:
        method, _, assignment = item.partition(":")
        key, _, value = assignment.partition("=")
        if not key or not value:
            raise SystemExit(f"--set {item!r}: expected METHOD:PARAM=VALUE")
        out.setdefault(method, {})[key] = json.loads(value) if value[:1] in "[{0123456789-tfn\"" else value
    return out


def bench_params(cls, iterations: int, overrides: dict) -> dict:
    """Defaults with every ``*iterations*`` integer parameter set to ``iterations``."""
    params = {f.name: iterations for f in dataclasses.fields(cls.Params)
              if "iterations" in f.name and isinstance(f.default, int)
              and not isinstance(f.default, bool)}
    params.update(overrides)
    return params


def _pair(size: int, scale: int, seed: int):
    from hmifbench.datasets import degrade
    from hmifbench.datasets.synthetic import make_scene
    from hmifbench.methods import FusionProblem

    scene = make_scene(seed=seed, size=size)
    pair = degrade(scene, f"gauss-fwhm-x{scale}")
    t = pair.truth
    return FusionProblem(pair.lr_hsi, pair.hr_msi, t["scale"], wavelengths=scene.wavelengths,
                         psf=np.asarray(t["psf"]), srf=np.asarray(t["srf"]), offset=t["offset"],
                         border=t["border"])


def run_one(method: str, size: int, scale: int, params: dict) -> dict:
    """Time one method at one size in this process (called in a subprocess)."""
    import resource

    from hmifbench import methods

    m = methods.get(method, **params)
    stamps: list[tuple[float, float]] = []

    def progress(done, total, losses):
        stamps.append((time.perf_counter(), time.process_time()))

    start = (time.perf_counter(), time.process_time())
    if m.trains_on_dataset(m.params):
        m.fit([_pair(size, scale, 1), _pair(size, scale, 2)], seed=0, device="cpu",
              progress=progress)
    else:
        m.fuse(_pair(size, scale, 0), seed=0, device="cpu", progress=progress)
    total = (time.perf_counter() - start[0], time.process_time() - start[1])
    if len(stamps) < 3:
        raise SystemExit(f"{method}: only {len(stamps)} progress calls; need >= 3 iterations "
                         "(does it run the shared loop with the progress callback?)")
    wall = [b[0] - a[0] for a, b in zip(stamps[1:], stamps[2:])]
    cpu = [b[1] - a[1] for a, b in zip(stamps[1:], stamps[2:])]
    wall_it, cpu_it = statistics.median(wall), statistics.median(cpu)
    return {"method": method, "size": size, "scale": scale, "params": params,
            "iterations": len(stamps), "s_per_it_wall": wall_it, "s_per_it_cpu": cpu_it,
            "it_per_s_wall": 1.0 / wall_it, "total_wall_s": total[0], "total_cpu_s": total[1],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "threads": int(os.environ.get("OMP_NUM_THREADS", "0") or 0)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--scale", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--methods", nargs="+", default=None)
    ap.add_argument("--set", action="append", dest="sets", metavar="METHOD:PARAM=VALUE")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per (method, size)")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--child", nargs=3, metavar=("METHOD", "SIZE", "PARAMS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        method, size, params = args.child[0], int(args.child[1]), json.loads(args.child[2])
        print(json.dumps(run_one(method, size, args.scale, params)))
        return

    from hmifbench import methods

    names = args.methods or deep_methods()
    sets = _parse_sets(args.sets)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    results = []
    print(f"# {args.threads} threads, ×{args.scale}, loadavg {open('/proc/loadavg').read().strip()}")
    print(f"{'method':12s} {'size':>5s} {'s/it wall':>10s} {'s/it CPU':>9s} {'it/s':>7s} "
          f"{'peak RSS MB':>12s}")
    for name in names:
        params = bench_params(methods.get_class(name), args.iterations, sets.get(name, {}))
        for size in args.sizes:
            cmd = [sys.executable, __file__, "--scale", str(args.scale), "--threads",
                   str(args.threads), "--child", name, str(size), json.dumps(params)]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, env=env,
                                      timeout=args.timeout)
            except subprocess.TimeoutExpired:
                print(f"{name:12s} {size:5d} timed out after {args.timeout:.0f} s")
                continue
            if done.returncode:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
                print(f"{name:12s} {size:5d} failed: {tail[0] if tail else done.returncode}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            results.append(r)
            print(f"{name:12s} {size:5d} {r['s_per_it_wall']:10.3f} {r['s_per_it_cpu']:9.3f} "
                  f"{r['it_per_s_wall']:7.2f} {r['peak_rss_mb']:12.0f}", flush=True)
    print(f"# loadavg after: {open('/proc/loadavg').read().strip()}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
