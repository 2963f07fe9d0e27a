"""CPU proof of DAEM on the three real CAVE crops at ×8 (``gauss-fwhm-x8``, known setting).

    OMP_NUM_THREADS=1 python benchmarks/proof_daem.py --data ../shared/data/real
    python benchmarks/proof_daem.py --train synthetic      # train on 4 synthetic 128² scenes

DAEM trains on a dataset, so each crop is fused by a model trained on the *other two* crops
(``--train loo``, default: the test scene is never seen in training) or on synthetic
ColorChecker scenes (``--train synthetic``), then adapted on the test pair. Prints PSNR, SAM,
ERGAS, time and iterations for DAEM and the linear baselines, and the load average.

    python benchmarks/proof_daem.py --flops    # forward FLOPs at 512² (metrics/cost), no data
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _proof  # noqa: E402

PROTOCOL = "gauss-fwhm-x8"


def train_problems(name, crops, mode, setting):
    if mode == "loo":
        return [_proof.problem_of(c, PROTOCOL, setting)[0] for n, c in crops.items() if n != name]
    from hmifbench.cube import Cube
    from hmifbench.datasets.synthetic import make_scene

    return [_proof.problem_of(Cube(make_scene(seed=s, size=128).data, _proof.WAVELENGTHS),
                              PROTOCOL, setting)[0] for s in range(4)]


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
    ap.add_argument("--data", type=Path, default=_proof.DEFAULT_DATA)
    ap.add_argument("--train", choices=("loo", "synthetic"), default="loo")
    ap.add_argument("--setting", choices=("known", "blind"), default="known")
    ap.add_argument("--iterations", type=int, default=7300, help="training steps")
    ap.add_argument("--adapt", type=int, default=475)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crops", nargs="*", default=None, help="crop names (default: all)")
    ap.add_argument("--linear", nargs="*", default=list(_proof.LINEAR))
    ap.add_argument("--flops", action="store_true", help="print forward FLOPs and exit")
    args = ap.parse_args(argv)
    if args.flops:
        return flops()

    from hmifbench import registry

    crops = _proof.cave_crops(args.data)
    for name in args.crops or list(crops):
        problem, truth = _proof.problem_of(crops[name], PROTOCOL, args.setting)
        print(f"{name} {truth.shape} {PROTOCOL} {args.setting}, train={args.train}, "
              f"load {_proof.loadavg()}", flush=True)
        method = registry.get("daem", iterations=args.iterations, adapt_iterations=args.adapt)
        t0 = time.perf_counter()
        state = method.fit(train_problems(name, crops, args.train, args.setting), seed=args.seed,
                           device="cpu")
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        fused = method.fuse(problem, state=state, seed=args.seed, device="cpu")
        t_fuse = time.perf_counter() - t0
        print(_proof.row("daem", _proof.score(truth, fused.hr_hsi, 8), t_fit + t_fuse,
                         f"train {state['iterations']} it {t_fit:.1f} s + adapt "
                         f"{fused.iterations} it {t_fuse:.1f} s, {fused.n_params} params"))
        base = _proof.linear_baselines(problem, truth, args.linear)
        for m, (scores, seconds) in base.items():
            print(_proof.row(m, scores, seconds))
        best = max(base, key=lambda m: base[m][0]["psnr"])
        print(f"  best linear by PSNR: {best}; load {_proof.loadavg()}", flush=True)


if __name__ == "__main__":
    main()
