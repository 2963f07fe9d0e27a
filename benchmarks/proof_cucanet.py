"""CPU proof of CUCaNet on the three real CAVE crops at ×8 (``gauss-fwhm-x8``; run on demand).

    OMP_NUM_THREADS=1 python benchmarks/proof_cucanet.py [--crops balloons chart_toy feathers]
        [--threads 1] [--iterations N] [--width W] [--endmembers K] [--lr LR]
        [--setting known|blind] [--standardise] [--curve-every N]
    python benchmarks/proof_cucanet.py --flops

The harness is ``cave_proof.py`` (crops cut to a multiple of 8 from the top-left, linear
references, the table). CUCaNet runs at the CPU budget below (issue 16: beat ``upsample`` on
PSNR and SAM within 10 minutes a crop on 2 cores); ``--curve-every`` prints PSNR/SAM of the
running estimate every N iterations.

``--flops`` prints the forward FLOPs of the paper-size network (width 512, K 128) at 512²
×32, 512² ×8 and 128² ×8 (``hmifbench.metrics.cost.count_flops`` on the meta device: shapes
only, nothing computed) and exits.
"""

from __future__ import annotations

import argparse
import os

from cave_proof import LINEAR, Curve, prove

#: The CPU budget (the paper: width 512, K 128, 10,000 iterations on a GPU): the paper's
#: endmember count at a narrow width; K 16 missed the SAM bar (see the method's docstring).
CPU_BUDGET = {"iterations": 2000, "width": 64, "endmembers": 128}


def print_flops() -> None:
    import torch

    from hmifbench.methods.cucanet import network as N
    from hmifbench.metrics.cost import count_flops

    for size, s in ((512, 32), (512, 8), (128, 8)):
        with torch.device("meta"):
            net = N.CUCaNet(31, 3, s, (size // s, size // s))
            yh, ym = torch.empty(1, 31, size // s, size // s), torch.empty(1, 3, size, size)
        f = count_flops(net, yh, ym)
        print(f"{size}² ×{s}: forward {f['flops'] / 1e9:.1f} GFLOPs ({f['macs'] / 1e9:.1f} GMACs)")


def running_estimate():
    """An ``estimate`` callable for :class:`Curve`: the fused image X̂ of the network's latest
    forward inputs, recomputed without gradients (the network is found by wrapping its
    ``forward``; the training itself is unchanged)."""
    import torch

    from hmifbench.methods import _deep
    from hmifbench.methods.cucanet import network as N

    seen = {}
    forward = N.CUCaNet.forward

    def wrapped(self, lr_hsi, hr_msi):
        seen.update(net=self, inputs=(lr_hsi, hr_msi))
        return forward(self, lr_hsi, hr_msi)

    N.CUCaNet.forward = wrapped

    def estimate(problem):
        if "net" not in seen:
            return None
        with torch.no_grad():
            return _deep.to_hwc(forward(seen["net"], *seen["inputs"])["hr_hsi"])

    return estimate


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crops", nargs="*", default=None, help="substrings of crop names")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=CPU_BUDGET["iterations"])
    ap.add_argument("--width", type=int, default=CPU_BUDGET["width"])
    ap.add_argument("--endmembers", type=int, default=CPU_BUDGET["endmembers"])
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--setting", choices=["known", "blind"], default="known")
    ap.add_argument("--standardise", action="store_true",
                    help="standardise_input=True (standardised encoder input, not the paper)")
    ap.add_argument("--curve-every", type=int, default=0, help="0: no curve")
    ap.add_argument("--linear", nargs="+", default=LINEAR,
                    help="reference methods, upsample and gsa first (default: all linear)")
    ap.add_argument("--flops", action="store_true")
    args = ap.parse_args()
    if args.flops:
        print_flops()
    else:
        params = {"iterations": args.iterations, "width": args.width,
                  "endmembers": args.endmembers, "lr": args.lr,
                  "standardise_input": args.standardise}
        curve = Curve(args.curve_every, running_estimate()) if args.curve_every else None
        prove("cucanet", params, args.setting, args.crops, linear=args.linear,
              threads=args.threads, curve=curve)
