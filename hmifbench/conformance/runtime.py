"""Checks that run the method: output contract, determinism, inputs untouched, odd sizes,
known/blind settings, CPU only, storable result, accuracy and time (information)."""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

import numpy as np

from hmifbench.errors import InputError

from .context import CheckResult, Context, Run, _cuda_initialized, _where
from .problems import _copy_problem


def _output_problems(run: Run, problem) -> list[tuple[str, str]]:
    """What is wrong with one run's output (empty when it is fine)."""
    from hmifbench.method import Fused

    if not run.ok:
        if isinstance(run.error, TypeError) and "workdir" in str(run.error):
            return [(f"fit raised {run.describe_error()}", "fit() must accept workdir=None "
                     "(the workflow passes the model folder for checkpoints)")]
        return [(f"fit/fuse raised {run.describe_error()}", "see the error; reproduce it with "
                 "problem, reference = hmifbench.conformance.make_problem(32, 32, 16)")]
    if not isinstance(run.result, Fused):
        return [(f"fuse() returned {type(run.result).__name__}",
                 "return hmifbench.methods.Fused(hr_hsi, ...)")]
    if run.result.hr_hsi.dtype != np.float32:  # Fused converts; a later reassignment may not
        return [(f"hr_hsi is {run.result.hr_hsi.dtype}", "return float32")]
    try:
        run.result.check(problem)
    except InputError as err:
        return [(str(err), "return an (H, W, B) array (rows and columns of the HR-MSI, bands of "
                 "the LR-HSI), finite everywhere: guard divisions and logs and check the "
                 "iterations converge")]
    return []


def _shape_text(run: Run, problem) -> str:
    x = run.result.hr_hsi
    return (f"{x.shape} {x.dtype} finite from LR {problem.lr_hsi.shape} + MSI "
            f"{problem.hr_msi.shape}")


def _output_fails(ctx: Context) -> bool:
    """Whether the standard known-setting run (the output check's) failed."""
    problem, _ = ctx.problem("standard", "known")
    return bool(_output_problems(ctx.run("standard", "known"), problem))


def _blocked(name: str) -> CheckResult:
    """A check that cannot be judged because the output check fails (counted once, there)."""
    return CheckResult(name, "SKIP", "not judged: the output check fails (fix that first)")


def check_output(ctx: Context) -> CheckResult:
    run = ctx.run("standard", "known")
    problem, _ = ctx.problem("standard", "known")
    problems = _output_problems(run, problem)
    if problems:
        return CheckResult("output", "FAIL", problems[0][0], problems[0][1])
    return CheckResult("output", "PASS", f"{_shape_text(run, problem)}, device={ctx.device!r}")


def check_determinism(ctx: Context) -> CheckResult:
    if _output_fails(ctx):
        return _blocked("determinism")
    a, b = ctx.run("standard", "known", 0, 0), ctx.run("standard", "known", 0, 1)
    problem, _ = ctx.problem("standard", "known")
    second = _output_problems(b, problem)
    if second:
        return CheckResult("determinism", "FAIL", f"the first run with seed=0 worked, a second one "
                           f"did not: {second[0][0]}", "don't keep state between runs (class "
                           "attributes, module globals, caches); draw randomness from the seed")
    x, y = a.result.hr_hsi, b.result.hr_hsi
    if np.array_equal(x, y):
        return CheckResult("determinism", "PASS", "seed=0 twice (fresh instances, different global "
                           "random states): identical output")
    diff = float(np.max(np.abs(x.astype(np.float64) - y)))
    return CheckResult(
        "determinism", "FAIL", f"two runs with seed=0 differ (max |difference| {diff:.3g})",
        "draw every random number from the seed argument (np.random.default_rng(seed), "
        "torch.manual_seed(seed)); no global random state, time or unordered set iteration")


def check_inputs(ctx: Context) -> CheckResult:
    run = ctx.run("standard", "known")  # judged even when the output is wrong
    if run.inputs_changed:
        return CheckResult("inputs", "FAIL", f"fuse() modified problem.{' and problem.'.join(run.inputs_changed)}"
                           " in place", "work on a copy (e.g. x = problem.lr_hsi.astype(np.float64))")
    return CheckResult("inputs", "PASS", "fuse() left lr_hsi and hr_msi unchanged")


def check_odd_sizes(ctx: Context) -> CheckResult:
    setting = "blind" if ctx.cls.blind else "known"
    run = ctx.run("odd", setting)
    problem, _ = ctx.problem("odd", setting)
    problems = _output_problems(run, problem)
    if problems:
        hint = "" if _output_fails(ctx) else ("; don't assume square images, a power-of-two "
                                              "size or a fixed band count")
        return CheckResult("odd-sizes", "FAIL", f"24×40 HR, scale 4, 7 HSI / 3 MSI bands ({setting}): "
                           f"{problems[0][0]}", problems[0][1] + hint)
    return CheckResult("odd-sizes", "PASS", f"{_shape_text(run, problem)} ({setting})")


def check_settings(ctx: Context) -> CheckResult:
    if ctx.cls.blind:
        if _output_fails(ctx):
            return _blocked("settings")
        run = ctx.run("standard", "blind")
        problem, _ = ctx.problem("standard", "blind")
        problems = _output_problems(run, problem)
        if problems:
            return CheckResult("settings", "FAIL", f"declares blind=True but fails with psf=None, "
                               f"srf=None: {problems[0][0]}", "estimate the PSF/SRF (or use a "
                               "default) when they are None, or declare blind=False and needs_*")
        return CheckResult("settings", "PASS", "blind: runs with psf=None, srf=None; known: runs "
                           "with the true PSF and SRF")
    needed = [n for n, need in (("psf", ctx.cls.needs_psf), ("srf", ctx.cls.needs_srf)) if need]
    if not needed:
        return CheckResult("settings", "SKIP", "neither blind nor needing psf/srf (see metadata)")
    problems = [_refusal(ctx, n) for n in needed]
    problems = [p for p in problems if p]
    if problems:
        return CheckResult("settings", "FAIL", "; ".join(problems),
                           "call self.check_problem(problem) first in fuse(): it raises InputError "
                           "naming what is missing")
    return CheckResult("settings", "PASS", f"not blind: a missing {' / '.join(needed)} is refused "
                       "with an InputError naming it")


def _refusal(ctx: Context, missing: str) -> str:
    """'' when fuse() refuses a problem without ``missing`` with an InputError naming it."""
    problem, _ = ctx.problem("standard", "known")
    given = _copy_problem(problem, **{missing: None})
    try:
        method = ctx.cls(**ctx.params)
        state = ctx.run("standard", "known").state if ctx.trains() else None
        method.fuse(given, state=state, seed=0, device=ctx.device)  # directly, as a user would
    except InputError as err:
        if missing not in str(err).lower():
            return f"without the {missing}: InputError does not mention {missing!r}: {err}"
        return ""
    except Exception as err:
        return (f"without the {missing}: raised {type(err).__name__} instead of InputError: "
                f"{err}{_where(err)}")
    return (f"ran without the {missing} although it declares blind=False and "
            f"needs_{missing}=True")


def check_cpu(ctx: Context) -> CheckResult:
    if ctx.device != "cpu":
        return CheckResult("cpu", "SKIP", f"checks ran on device={ctx.device!r}")
    run = ctx.run("standard", "known")
    if not run.ok:
        return CheckResult("cpu", "FAIL", f"fuse(device='cpu') raised {run.describe_error()}",
                           "run on the CPU when device='cpu' (torch.device(device))")
    if _cuda_initialized() and not ctx.cuda_before:
        return CheckResult("cpu", "FAIL", "device='cpu' was requested but CUDA was initialised",
                           "put tensors and modules on torch.device(device), never 'cuda' directly")
    return CheckResult("cpu", "PASS", "ran with device='cpu'" +
                       (" and left CUDA untouched" if _torch_cuda_available() else ""))


def _torch_cuda_available() -> bool:
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_available())
    except Exception:
        return False


def check_result(ctx: Context) -> CheckResult:
    """What the workflow writes to run.json / state.json must be storable."""
    from hmifbench.io import write_json

    run = ctx.run("standard", "known")
    problem, _ = ctx.problem("standard", "known")
    if _output_problems(run, problem):
        return _blocked("result")
    r, problems = run.result, []
    if isinstance(r.n_params, bool) or not isinstance(r.n_params, (int, np.integer)) or r.n_params < 0:
        problems.append((f"n_params={r.n_params!r}", "n_params: the number of learned parameters "
                         "(int >= 0; 0 for model-based methods)"))
    if r.iterations is not None and (not isinstance(r.iterations, (int, np.integer)) or r.iterations < 0):
        problems.append((f"iterations={r.iterations!r}", "iterations: an int >= 0 or None"))
    if r.psf is not None:
        psf = np.asarray(r.psf)
        if psf.ndim != 2 or not np.isfinite(psf).all():
            problems.append((f"psf has shape {psf.shape} or non-finite values",
                             "return the estimated PSF as a finite (k, k) kernel"))
    if r.srf is not None:
        srf = np.asarray(r.srf)
        if srf.shape != (problem.msi_bands, problem.bands) or not np.isfinite(srf).all():
            problems.append((f"srf has shape {srf.shape}, expected {(problem.msi_bands, problem.bands)}",
                             "return the estimated SRF as a (MSI bands, HSI bands) matrix"))
    with tempfile.TemporaryDirectory() as tmp:
        for what, obj in (("extras", r.extras), ("the state returned by fit()", run.state)):
            try:
                write_json(Path(tmp) / "x.json", {"x": obj})
            except Exception as err:
                problems.append((f"{what} cannot be written to JSON ({err})",
                                 "keep numbers, strings, lists, dicts and arrays in it (write "
                                 "big arrays or models to a file and store its path)"))
    if problems:
        return CheckResult("result", "FAIL", "; ".join(p for p, _ in problems),
                           "; ".join(f for _, f in problems))
    extra = [k for k in ("psf", "srf") if getattr(r, k) is not None]
    return CheckResult("result", "PASS", f"n_params={int(r.n_params)}, iterations={r.iterations}"
                       + (f", estimated {'/'.join(extra)}" if extra else "")
                       + f", {len(r.extras)} extra(s) JSON-serialisable")


def check_accuracy(ctx: Context) -> CheckResult:
    """Information only: how far from the reference, next to bicubic upsampling."""
    from hmifbench.metrics import psnr
    from hmifbench.observation import upsample_bicubic

    run = ctx.run("standard", "known")
    problem, ref = ctx.problem("standard", "known")
    if _output_problems(run, problem):
        return _blocked("accuracy")
    got = psnr(ref, run.result.hr_hsi)
    floor = psnr(ref, upsample_bicubic(problem.lr_hsi, problem.scale, problem.offset))
    rows, cols, bands = ref.shape
    text = (f"PSNR {got:.1f} dB on the {rows}×{cols}×{bands} problem (bicubic upsampling "
            f"{floor:.1f} dB)")
    if got < floor - 3:
        fix = ("expected with tiny quick parameters for a deep method; otherwise check the band "
               "order, the scale/offset convention and value range") if ctx.quick else (
               "check the band order, the scale/offset convention and the value range")
        return CheckResult("accuracy", "WARN", text + ": more than 3 dB below upsampling", fix)
    return CheckResult("accuracy", "INFO", text)


def check_time(ctx: Context) -> CheckResult:
    parts = []
    for (key, setting, seed, repeat), run in ctx._runs.items():
        if run.ok:
            fit = f"fit {run.fit_s:.2f} s + " if run.fit_s else ""
            parts.append(f"{key}/{setting}#{repeat} {fit}fuse {run.fuse_s:.2f} s")
    return CheckResult("time", "INFO", "; ".join(parts) or "no successful run")
