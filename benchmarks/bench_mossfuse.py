"""Benchmarks of the MossFuse reimplementation (run on demand, not part of the test suite).

    python benchmarks/bench_mossfuse.py params
    python benchmarks/bench_mossfuse.py flops
    python benchmarks/bench_mossfuse.py speed [--threads 2] [--repeats 5]
    python benchmarks/bench_mossfuse.py estimator [--iterations 300]
    python benchmarks/bench_mossfuse.py quality [--size 128] [--iterations 200]
    python benchmarks/bench_mossfuse.py cuda
    python benchmarks/bench_mossfuse.py released [--weights mossfuse-cave-x32] [--threads 2] [--repeats 5]

params     parameter counts per module (width 48; 1 and 3 blocks) against the released model's.
flops      forward FLOPs (torch.utils.flop_counter, on the meta device: exact counts, no compute)
           at 128² and 512², ×32: the reference formulation's full forward (what the released
           test script runs, plus the PSF/SRF applied to X̂ as its forward does) and the fast
           inference path.
speed      one training step (batch 2, 128² HR patches, ×32, all four losses) and one 512²
           inference, reference formulation (NCHW, unfused operators, full forward) against
           the shipped path (channels-last, fused operators, inference path only). Wall-clock
           and process-CPU medians; on a shared machine the CPU time is the steadier figure.
estimator  blind PSF/SRF recovery on the ``mossfuse-x32`` simulation (31×31 Gaussian, σ = 2,
           Nikon D700 "create_F" SRF, sample [15::32]) of four synthetic 256² scenes, by a
           dataset fit (``--warmup`` L_DE-only steps, then ``--iterations`` training steps
           with a cosine schedule), for the 'aligned' and 'released' augmentations. The
           estimate depends only on L_DE, so a narrow network (width 8) gives the same
           estimate at a fraction of the cost.
quality    per-scene MossFuse against bicubic ``upsample`` (PSNR, peak 1, mean over bands) on
           synthetic scenes at ×4 and ×8 (Gaussian 7×7, σ = 2), with a reduced CPU budget.
cuda       a short per-scene run and the 512² inference time on the GPU, when there is one.
released   what a user of the released weights waits for: ``fuse`` on one 512² ``mossfuse-x32``
           scene (load, checksum, key map, one forward pass), then the forward pass alone as
           ``fuse`` runs it (eval mode, ``torch.inference_mode()``, channels-last) against the
           same pass on NCHW tensors, per thread count, on the CPU (and on the GPU when one is
           visible); peak resident memory of the process and the load average.

Synthetic scenes come from ``hmifbench.datasets.synthetic.make_scene`` when it is installed,
otherwise from a small generator below (smooth spectra mixed by blurred abundance maps).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

D700_COUNTS = np.array([
    [2, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 6, 11, 17, 21, 22, 21, 20, 20, 19, 19, 18, 18, 17, 17],
    [1, 1, 1, 1, 1, 1, 2, 4, 6, 8, 11, 16, 19, 21, 20, 18, 16, 14, 11, 7, 5, 3, 2, 2, 1, 1, 2, 2, 2, 2, 2],
    [7, 10, 15, 19, 25, 29, 30, 29, 27, 22, 16, 9, 2, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]],
    dtype=float)
D700 = D700_COUNTS / D700_COUNTS.sum(axis=1, keepdims=True)
RELEASED = {1: {"msi_encoder": 185800, "hsi_encoder": 158172, "msi_decoder": 43262,
                "hsi_decoder": 51182, "degradation": 97, "lr_decoder": 41888,
                "fusion_decoder": 105084, "total": 585485, "inference": 449153},
            3: {"msi_encoder": 238328, "hsi_encoder": 210700, "msi_decoder": 95790,
                "hsi_decoder": 103710, "degradation": 97, "lr_decoder": 94416,
                "fusion_decoder": 157612, "total": 900653, "inference": 606737}}


def scene(seed: int, size: int) -> np.ndarray:
    """A (size, size, 31) reflectance cube in [0, 1]."""
    try:
        from hmifbench.datasets.synthetic import make_scene

        return np.asarray(make_scene(seed, size), dtype=np.float32)
    except ImportError:
        from scipy import ndimage

        rng = np.random.default_rng(seed)
        t = np.linspace(0, 1, 31)
        spectra = np.stack([0.05 + 0.9 * np.exp(-0.5 * ((t - rng.uniform()) / rng.uniform(0.15, 0.5)) ** 2)
                            for _ in range(5)])
        maps = ndimage.gaussian_filter(rng.random((size, size, 5)), (3, 3, 0))
        maps = np.exp(10 * (maps - maps.mean()) / maps.std() / 3)
        return ((maps / maps.sum(-1, keepdims=True)) @ spectra).astype(np.float32)


def simulate(x, scale, psf):
    from hmifbench.methods import FusionProblem
    from hmifbench.observation import spatial_degrade, spectral_degrade

    return FusionProblem(spatial_degrade(x, psf, scale), spectral_degrade(x, D700), scale)


def psnr(ref, est) -> float:
    est = np.clip(est, 0, 1)
    mse = ((ref - est) ** 2).reshape(-1, ref.shape[2]).mean(0)
    return float(np.mean(10 * np.log10(1 / mse)))


# ---------------------------------------------------------------------------------------------

def bench_params(args):
    from hmifbench.methods.mossfuse.network import MossFuseNet, parameter_table

    out = {}
    for blocks in (1, 3):
        table = parameter_table(MossFuseNet(31, 3, 32, width=48, blocks=blocks))
        out[blocks] = {k: (v, RELEASED[blocks][k], v == RELEASED[blocks][k]) for k, v in table.items()}
        print(f"blocks={blocks}")
        for k, (ours, ref, same) in out[blocks].items():
            print(f"  {k:15s} {ours:9,d}  released {ref:9,d}  {'equal' if same else 'DIFFERENT'}")
    return out


def bench_flops(args):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from hmifbench.methods.mossfuse import network as N
    from hmifbench.methods.mossfuse.degradation import blur_decimate, spectral_project

    results = {}
    for fast in (False, True):
        N.FAST_OPS = fast
        for size in (128, 512):
            model = N.MossFuseNet(31, 3, 32).to("meta").eval()
            msi = torch.empty(1, 3, size, size, device="meta")
            lr = torch.empty(1, 31, size // 32, size // 32, device="meta")
            if fast:
                model = model.to(memory_format=torch.channels_last)
                msi = msi.contiguous(memory_format=torch.channels_last)
            with FlopCounterMode(display=False) as fc, torch.no_grad():
                out = model(msi, lr)
                blur_decimate(out["fused"], out["psf"], 32, 15)
                spectral_project(out["fused"], out["srf"])
            full = fc.get_total_flops()
            with FlopCounterMode(display=False) as fc, torch.no_grad():
                model.fuse(msi, lr)
            key = f"{'fast' if fast else 'reference'} {size}"
            results[key] = {"full_forward_gflop": full / 1e9, "inference_path_gflop": fc.get_total_flops() / 1e9}
            print(f"{key:15s} full forward {full / 1e9:8.2f} GFLOP   inference path "
                  f"{fc.get_total_flops() / 1e9:8.2f} GFLOP")
    N.FAST_OPS = True
    # The released BlindNet convolves the HR-MSI with the 31×31 PSF at every HR position and
    # then keeps [0::32]; the strided convolution here computes only the kept outputs.
    for size in (128, 512):
        extra = (size - 31 + 1) ** 2 * 3 * 31 * 31 * 2 / 1e9
        total = results[f"reference {size}"]["full_forward_gflop"] + extra
        results[f"reference {size}"]["with_released_full_resolution_psf_conv_gflop"] = total
        print(f"reference {size} + the released full-resolution PSF convolution "
              f"({extra:.2f} GFLOP): {total:.2f} GFLOP")
    print("public code (as counted when the suite was written): 18.4 GFLOP at 128², 294.5 GFLOP at 512²; paper: 279.4 G")
    return results


def _timed(fn, repeats):
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return {"wall_median_s": statistics.median(walls), "wall_min_s": min(walls),
            "cpu_median_s": statistics.median(cpus), "walls": walls, "cpus": cpus}


def bench_speed(args):
    """Reference and fast variants are timed alternately (one of each per round), so that both
    see the same background load."""
    import torch

    from hmifbench import methods
    from hmifbench.methods.mossfuse import network as N
    from hmifbench.methods.mossfuse.training import make_optimizer, train_step

    torch.set_num_threads(args.threads)
    p = methods.get("mossfuse").params
    results = {"threads": args.threads, "torch": torch.__version__}
    g = torch.Generator().manual_seed(0)
    cl = torch.channels_last

    def train_case(fast):
        N.FAST_OPS = fast
        torch.manual_seed(0)
        model = N.MossFuseNet(31, 3, 32)
        a, b = torch.rand(2, 3, 128, 128, generator=g), torch.rand(2, 31, 4, 4, generator=g)
        if fast:
            model = model.to(memory_format=cl)
            a, b = a.contiguous(memory_format=cl), b.contiguous(memory_format=cl)
        # The reference uses PyTorch's default Adam (a loop over parameters), as released.
        opt = make_optimizer(model, p) if fast else torch.optim.Adam(model.parameters(), lr=p.lr)
        return lambda: train_step(model, opt, a, b, p)

    def infer_case(fast):
        torch.manual_seed(0)
        model = N.MossFuseNet(31, 3, 32).eval()
        a, b = torch.rand(1, 3, 512, 512, generator=g), torch.rand(1, 31, 16, 16, generator=g)
        if fast:
            model = model.to(memory_format=cl)
            a, b = a.contiguous(memory_format=cl), b.contiguous(memory_format=cl)

            def run():
                with torch.inference_mode():
                    model.fuse(a, b)
        else:
            def run():  # the released test script: the full forward under no_grad
                with torch.no_grad():
                    model(a, b)
        return run

    for what, make, repeats in (("train_step", train_case, args.repeats),
                                ("inference_512", infer_case, max(2, args.repeats // 2))):
        cases = {v: make(v == "fast") for v in ("reference", "fast")}
        times = {v: {"wall": [], "cpu": []} for v in cases}
        for r in range(repeats + 1):  # round 0 is a warm-up
            for v, fn in cases.items():
                N.FAST_OPS = v == "fast"
                w, c = time.perf_counter(), time.process_time()
                fn()
                if r:
                    times[v]["wall"].append(time.perf_counter() - w)
                    times[v]["cpu"].append(time.process_time() - c)
        for v, t in times.items():
            res = {"wall_median_s": statistics.median(t["wall"]), "wall_min_s": min(t["wall"]),
                   "cpu_median_s": statistics.median(t["cpu"]), **t}
            results[f"{what}_{v}"] = res
            print(f"{what} ({v:9s}) wall median {res['wall_median_s']:.2f} s  min "
                  f"{res['wall_min_s']:.2f} s  cpu median {res['cpu_median_s']:.2f} s", flush=True)
        ratios = [f / r for f, r in zip(times["fast"]["wall"], times["reference"]["wall"])]
        results[f"{what}_ratio_median"] = statistics.median(ratios)
        print(f"{what}: fast/reference per round, median {statistics.median(ratios):.2f} "
              f"(rounds {[round(x, 2) for x in ratios]})", flush=True)
    N.FAST_OPS = True
    return results


def bench_estimator(args):
    import torch

    from hmifbench import methods
    from hmifbench.observation import gaussian_psf

    torch.set_num_threads(args.threads)
    psf = gaussian_psf(31, 2.0)
    pairs = [simulate(scene(100 + i, 256), 32, psf) for i in range(args.scenes)]
    results = {}
    for augment in args.augment:
        m = methods.get("mossfuse", iterations=args.iterations, width=8, lr=3e-3,
                        lr_degradation=args.lr_degradation, lr_schedule="cosine",
                        degradation_warmup=args.warmup, augment=augment, shuffle=True)
        t = time.process_time()
        state = m.fit(pairs, seed=0, device="cpu")
        fused = m.fuse(pairs[0], state=state, device="cpu")
        cov = np.asarray(fused.extras["psf_covariance"])
        sig = np.sqrt(np.diag(cov))
        r = {"sigma_px": sig.tolist(), "sigma_error_px": float(np.abs(sig - 2.0).max()),
             "covariance": cov.tolist(), "psf_max_abs_error": float(np.abs(fused.psf - psf).max()),
             "srf_mae": float(np.abs(fused.srf - D700).mean()),
             "srf_max_abs_error": float(np.abs(fused.srf - D700).max()),
             "srf_raw_min": fused.extras["srf_raw_min"], "cpu_s": time.process_time() - t,
             "iterations": args.iterations, "degradation_warmup": args.warmup}
        results[augment] = r
        print(f"augment={augment:9s} sigma {sig.round(4).tolist()} (max error "
              f"{r['sigma_error_px']:.4f} px)  SRF MAE {r['srf_mae']:.2e}  max "
              f"{r['srf_max_abs_error']:.2e}  PSF max error {r['psf_max_abs_error']:.2e}  "
              f"({r['cpu_s']:.0f} s CPU)")
    return results


def bench_quality(args):
    import torch

    from hmifbench import methods
    from hmifbench.observation import gaussian_psf

    torch.set_num_threads(args.threads)
    kw = dict(mode="per-scene", iterations=args.iterations, width=args.width, lr=args.lr,
              lr_degradation=5e-2, degradation_warmup=500, lr_schedule="cosine",
              patch_size=64, patch_stride=32)
    results = {"params": kw, "runs": []}
    print("params", kw)
    for scale in (4, 8):
        for seed in range(args.scenes):
            x = scene(seed, args.size)
            prob = simulate(x, scale, gaussian_psf(7, 2.0))
            up = methods.get("upsample").fuse(prob).hr_hsi
            w, c = time.perf_counter(), time.process_time()
            f = methods.get("mossfuse", **kw).fuse(prob, seed=0, device="cpu")
            r = {"scale": scale, "scene": seed, "upsample_psnr": psnr(x, up),
                 "mossfuse_psnr": psnr(x, f.hr_hsi), "wall_s": time.perf_counter() - w,
                 "cpu_s": time.process_time() - c, "sigma_px": f.extras["psf_sigma_px"]}
            results["runs"].append(r)
            print(f"x{scale} scene {seed}: upsample {r['upsample_psnr']:.2f} dB, mossfuse "
                  f"{r['mossfuse_psnr']:.2f} dB ({r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} s CPU)",
                  flush=True)
    return results


def bench_cuda(args):
    import torch

    from hmifbench import methods
    from hmifbench.methods.mossfuse import network as N
    from hmifbench.observation import gaussian_psf

    if not torch.cuda.is_available():
        print("no CUDA device")
        return {}
    x = scene(0, 128)
    prob = simulate(x, 4, gaussian_psf(7, 2.0))
    t = time.perf_counter()
    f = methods.get("mossfuse", mode="per-scene", iterations=200, width=48, lr=3e-3,
                    lr_degradation=5e-2, lr_schedule="cosine", patch_size=64).fuse(prob, device="cuda")
    per_scene = time.perf_counter() - t
    up = methods.get("upsample").fuse(prob).hr_hsi
    model = N.MossFuseNet(31, 3, 32).cuda().eval().to(memory_format=torch.channels_last)
    msi = torch.rand(1, 3, 512, 512, device="cuda").contiguous(memory_format=torch.channels_last)
    lr = torch.rand(1, 31, 16, 16, device="cuda")
    times = []
    for _ in range(6):
        torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.inference_mode():
            model.fuse(msi, lr)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    r = {"device": torch.cuda.get_device_name(), "per_scene_200_iterations_s": per_scene,
         "per_scene_psnr": psnr(x, f.hr_hsi), "upsample_psnr": psnr(x, up),
         "inference_512_median_s": statistics.median(times[1:]),
         "max_memory_mb": torch.cuda.max_memory_allocated() / 2**20}
    print(json.dumps(r, indent=1))
    return r


def bench_released(args):
    import os
    import resource

    import torch

    from hmifbench import methods
    from hmifbench.datasets import degrade
    from hmifbench.methods.mossfuse import training as T

    def rss_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    from hmifbench.datasets.synthetic import make_scene

    cube = make_scene(0, 512)  # a Cube: the SRF table needs its wavelengths
    x = np.asarray(cube.data, dtype=np.float32)
    pair = degrade(cube, "mossfuse-x32")
    problem = methods.FusionProblem(pair.lr_hsi, pair.hr_msi, 32)
    method = methods.get("mossfuse", weights=args.weights)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    before = rss_mb()
    t = time.perf_counter()
    fused = method.fuse(problem, device="cpu")
    first = time.perf_counter() - t
    r = {"torch": torch.__version__, "cpus": os.cpu_count(), "loadavg_before": load,
         "fuse_first_call_s": first, "psnr_vs_truth": psnr(x, fused.hr_hsi),
         "upsample_psnr": psnr(x, methods.get("upsample").fuse(problem).hr_hsi),
         "rss_before_mb": before, "peak_rss_after_fuse_mb": rss_mb()}
    print(f"load average {load}; fuse() first call {first:.2f} s (load, sha256, key map, forward); "
          f"PSNR {r['psnr_vs_truth']:.2f} dB, upsample {r['upsample_psnr']:.2f} dB; "
          f"peak RSS {r['peak_rss_after_fuse_mb']:.0f} MB (before {before:.0f} MB)", flush=True)
    model, _ = method._released_model(problem)
    sc = T.to_scene(problem)

    def nchw():
        model.to(memory_format=torch.contiguous_format).eval()
        with torch.inference_mode():
            model.fuse(sc.msi[None], sc.lr_hsi[None])

    cases = {"channels_last (fuse's path)": lambda: T.predict(model, sc, torch.device("cpu")),
             "nchw": nchw}
    for threads in sorted({1, args.threads}, reverse=True):
        torch.set_num_threads(threads)
        times = {k: [] for k in cases}
        cpu = {k: [] for k in cases}
        for rep in range(args.repeats + 1):  # round 0 warms up; cases alternate within a round
            for name, fn in cases.items():
                w, c = time.perf_counter(), time.process_time()
                fn()
                if rep:
                    times[name].append(time.perf_counter() - w)
                    cpu[name].append(time.process_time() - c)
        for name, t in times.items():
            key = f"forward_512_{threads}threads_{name.split()[0]}"
            r[key] = {"median_s": statistics.median(t), "min_s": min(t), "all_s": t,
                      "cpu_median_s": statistics.median(cpu[name]), "loadavg": os.getloadavg()}
            print(f"{threads} thread(s), {name:28s} wall median {statistics.median(t):.2f} s  "
                  f"min {min(t):.2f} s  process CPU median {statistics.median(cpu[name]):.2f} s  "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    r["peak_rss_mb"] = rss_mb()
    r["loadavg_after"] = os.getloadavg()
    if torch.cuda.is_available():
        dev = torch.device("cuda")
        times = []
        for _ in range(args.repeats + 1):
            torch.cuda.synchronize()
            w = time.perf_counter()
            T.predict(model, sc, dev)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - w)
        r["cuda"] = {"device": torch.cuda.get_device_name(), "median_s": statistics.median(times[1:]),
                     "max_memory_mb": torch.cuda.max_memory_allocated() / 2**20}
    print(f"peak RSS {r['peak_rss_mb']:.0f} MB; load average after {r['loadavg_after']}", flush=True)
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["params", "flops", "speed", "estimator", "quality", "cuda", "released"])
    ap.add_argument("--weights", default="mossfuse-cave-x32",
                    help="released weights for 'released': a registered name or a file path")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--scenes", type=int, default=None)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--lr-degradation", type=float, default=5e-2)
    ap.add_argument("--warmup", type=int, default=3000, help="degradation_warmup (estimator)")
    ap.add_argument("--augment", nargs="+", default=["aligned", "released"])
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args(argv)
    defaults = {"estimator": (60, 4), "quality": (200, 2)}
    it, sc = defaults.get(args.what, (None, None))
    args.iterations = args.iterations or it
    args.scenes = args.scenes or sc
    result = globals()[f"bench_{args.what}"](args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1, default=str)


if __name__ == "__main__":
    sys.exit(main())
