"""CPU proof of DAEM on the three real CAVE crops at ×8 (``gauss-fwhm-x8``, known setting).

    OMP_NUM_THREADS=1 python benchmarks/proof_daem.py --data ../shared/data/real
    python benchmarks/proof_daem.py --train loo        # the other two crops only
    python benchmarks/proof_daem.py --train synthetic  # 4 synthetic 128² scenes only

DAEM trains on a dataset, so each crop is fused by a model trained on the *other two* crops
plus ``--synthetic`` synthetic ColorChecker scenes of 128² (``--train loo+synthetic``, the
default and the documented budget; ``loo``: the other crops only; ``synthetic``: the synthetic
scenes only), then adapted on the test pair. The test crop's ground truth is never a training
pair. Prints PSNR, SAM, wall and process-CPU seconds, seconds per step and iterations
for DAEM and the linear baselines, and the load average.

The budget (``CPU_BUDGET``): the paper's 7,300 training steps and its adaptation lr 1e-3, with
2,000 adaptation steps instead of 475 (see the DAEM docstring, "CPU proof", for the curve).

    python benchmarks/proof_daem.py --flops    # forward FLOPs at 512² (metrics/cost), no data
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cave_proof  # noqa: E402

PROTOCOL = "gauss-fwhm-x8"
CPU_BUDGET = {"iterations": 7300, "adapt_iterations": 2000, "adapt_lr": 1e-3}
SYNTHETIC_SCENES = 4


def train_problems(name, crops, mode, setting, synthetic=SYNTHETIC_SCENES):
    """The training pairs for test crop ``name``: never the test crop itself."""
    problems = []
    if mode in ("loo", "loo+synthetic"):
        problems += [cave_proof.problem_of(c, setting, PROTOCOL)
                     for n, c in crops.items() if n != name]
    if mode in ("synthetic", "loo+synthetic"):
        from hmifbench.cube import Cube
        from hmifbench.datasets.synthetic import make_scene

        problems += [cave_proof.problem_of(Cube(make_scene(seed=s, size=128).data,
                                                cave_proof.WAVELENGTHS), setting, PROTOCOL)
                     for s in range(synthetic)]
    return problems


def flops(size: int = 512, scale: int = 32) -> None:
    """FLOPs of the read-out g_μ(f_A(Y_m)) and of one adaptation step's forward at size²."""
    import torch

    from hmifbench.metrics.cost import count_flops
    from hmifbench.methods.daem import model as M

    net = M.build({"bands": 31, "msi_bands": 3, "degradation": "learned", "psf_size": scale}, 0)
    hr = torch.rand(size * size, 3)
    lr = torch.rand((size // scale) ** 2, 16)
    read_out = count_flops(lambda: net.mean(net.encoder(hr)))
    adapt = count_flops(lambda: net.decode(lr, torch.Generator().manual_seed(0)))
    print(f"{size}² ×{scale}: read-out {read_out['flops'] / 1e9:.3f} GFLOPs, adaptation step "
          f"forward {adapt['flops'] / 1e6:.3f} MFLOPs (2 FLOPs per multiply-add)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=cave_proof.real_dir())
    ap.add_argument("--train", choices=("loo+synthetic", "loo", "synthetic"),
                    default="loo+synthetic")
    ap.add_argument("--synthetic", type=int, default=SYNTHETIC_SCENES,
                    help="synthetic 128² training scenes (make_scene seeds 0..N-1)")
    ap.add_argument("--setting", choices=("known", "blind"), default="known")
    ap.add_argument("--iterations", type=int, default=CPU_BUDGET["iterations"],
                    help="training steps")
    ap.add_argument("--adapt", type=int, default=CPU_BUDGET["adapt_iterations"])
    ap.add_argument("--adapt-lr", type=float, default=CPU_BUDGET["adapt_lr"])
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crops", nargs="*", default=None, help="crop names (default: all)")
    ap.add_argument("--linear", nargs="*", default=list(cave_proof.LINEAR))
    ap.add_argument("--flops", action="store_true", help="print forward FLOPs and exit")
    args = ap.parse_args(argv)
    if args.flops:
        return flops()

    import torch

    from hmifbench import registry

    torch.set_num_threads(args.threads)
    crops = dict(cave_proof.cave_cubes(data=args.data))
    for name in args.crops or list(crops):
        problem, truth = cave_proof.problem_of(crops[name], args.setting, PROTOCOL), crops[name].data
        # Scoring (numba) resets the OpenMP thread count torch shares: set it for every crop.
        torch.set_num_threads(args.threads)
        train = train_problems(name, crops, args.train, args.setting, args.synthetic)
        print(f"{name} {truth.shape} {PROTOCOL} {args.setting}, train={args.train} "
              f"({len(train)} pairs), torch threads {args.threads}, load {os.getloadavg()}",
              flush=True)
        method = registry.get("daem", iterations=args.iterations, adapt_iterations=args.adapt,
                              adapt_lr=args.adapt_lr)
        t0, c0 = time.perf_counter(), time.process_time()
        state = method.fit(train, seed=args.seed, device="cpu")
        t_fit, c_fit = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        fused = method.fuse(problem, state=state, seed=args.seed, device="cpu")
        t_fuse, c_fuse = time.perf_counter() - t0, time.process_time() - c0
        n_fit, n_fuse = state["iterations"], fused.iterations
        psnr, sam = cave_proof.score(truth, fused.hr_hsi, problem.scale)
        print(f"  daem         PSNR {psnr:6.2f}  SAM {sam:5.2f}  {t_fit + t_fuse:7.1f} s wall  "
              f"CPU {c_fit + c_fuse:.1f} s; train {n_fit} it {t_fit:.1f} s wall {c_fit:.1f} s CPU "
              f"({1e3 * c_fit / max(n_fit, 1):.2f} ms CPU/it) + adapt {n_fuse} it {t_fuse:.1f} s "
              f"wall {c_fuse:.1f} s CPU ({1e3 * c_fuse / max(n_fuse, 1):.2f} ms CPU/it, with the "
              f"read-out), {fused.n_params} params")
        base = [cave_proof.run_method(m, {}, problem, truth) for m in args.linear]
        for r in base:
            print(f"  {r['method']:<12} PSNR {r['psnr']:6.2f}  SAM {r['sam']:5.2f}  "
                  f"{r['seconds']:7.1f} s wall  {r['cpu_seconds']:7.1f} s CPU")
        best = max(base, key=lambda r: r["psnr"])["method"]
        print(f"  best linear by PSNR: {best}; load {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
