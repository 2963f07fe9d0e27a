"""CPU proof of DAEM on the three real CAVE crops at ×8 (``gauss-fwhm-x8``, known setting).

    OMP_NUM_THREADS=1 python benchmarks/proof_daem.py --data ../shared/data/real
    python benchmarks/proof_daem.py --train synthetic      # train on 4 synthetic 128² scenes

DAEM trains on a dataset, so each crop is fused by a model trained on the *other two* crops
(``--train loo``, default: the test scene is never seen in training) or on synthetic
ColorChecker scenes (``--train synthetic``), then adapted on the test pair. Prints PSNR, SAM,
time and iterations for DAEM and the linear baselines, and the load average. The crops and
their degradation are those of ``cave_proof.py``.

    python benchmarks/proof_daem.py --flops    # forward FLOPs at 512² (metrics/cost), no data
"""

from __future__ import annotations

import argparse
import sys
import os
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cave_proof  # noqa: E402

PROTOCOL = "gauss-fwhm-x8"


def train_problems(name, crops, mode, setting):
    if mode == "loo":
        return [cave_proof.problem_of(c, setting, PROTOCOL) for n, c in crops.items() if n != name]
    from hmifbench.cube import Cube
    from hmifbench.datasets.synthetic import make_scene

    return [cave_proof.problem_of(Cube(make_scene(seed=s, size=128).data, cave_proof.WAVELENGTHS),
                                  setting, PROTOCOL) for s in range(4)]


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
    ap.add_argument("--train", choices=("loo", "synthetic"), default="loo")
    ap.add_argument("--setting", choices=("known", "blind"), default="known")
    ap.add_argument("--iterations", type=int, default=7300, help="training steps")
    ap.add_argument("--adapt", type=int, default=475)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crops", nargs="*", default=None, help="crop names (default: all)")
    ap.add_argument("--linear", nargs="*", default=list(cave_proof.LINEAR))
    ap.add_argument("--flops", action="store_true", help="print forward FLOPs and exit")
    args = ap.parse_args(argv)
    if args.flops:
        return flops()

    from hmifbench import registry

    crops = dict(cave_proof.cave_cubes(data=args.data))
    for name in args.crops or list(crops):
        problem = cave_proof.problem_of(crops[name], args.setting, PROTOCOL)
        truth = crops[name].data
        print(f"{name} {truth.shape} {PROTOCOL} {args.setting}, train={args.train}, "
              f"load {os.getloadavg()}", flush=True)
        method = registry.get("daem", iterations=args.iterations, adapt_iterations=args.adapt)
        t0 = time.perf_counter()
        state = method.fit(train_problems(name, crops, args.train, args.setting), seed=args.seed,
                           device="cpu")
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        fused = method.fuse(problem, state=state, seed=args.seed, device="cpu")
        t_fuse = time.perf_counter() - t0
        psnr, sam = cave_proof.score(truth, fused.hr_hsi, 8)
        print(f"  daem         PSNR {psnr:6.2f}  SAM {sam:5.2f}  {t_fit + t_fuse:7.1f} s  "
              f"train {state['iterations']} it {t_fit:.1f} s + adapt {fused.iterations} it "
              f"{t_fuse:.1f} s, {fused.n_params} params")
        base = [cave_proof.run_method(m, {}, problem, truth) for m in args.linear]
        for r in base:
            print(f"  {r['method']:<12} PSNR {r['psnr']:6.2f}  SAM {r['sam']:5.2f}  "
                  f"{r['seconds']:7.1f} s")
        best = max(base, key=lambda r: r["psnr"])["method"]
        print(f"  best linear by PSNR: {best}; load {os.getloadavg()}", flush=True)

if __name__ == "__main__":
    main()
