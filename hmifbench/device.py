"""Choosing the compute device inside a job.

Locally Snakemake does not set CUDA_VISIBLE_DEVICES; under SLURM a GPU job sees exactly the GPUs
it was given. A method that declares ``resources.gpu`` and finds no GPU fails loudly, unless
the configuration allows a CPU fallback (``allow_cpu_fallback``), so a misrouted cluster job
never silently runs for days on a CPU.
"""

from __future__ import annotations

import os

from hmifbench.errors import HmifError


class DeviceError(HmifError, RuntimeError):
    """The job needs a GPU and none is visible."""


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def resolve_device(requested: str, wants_gpu: bool, allow_cpu_fallback: bool) -> str:
    """The device a job runs on: ``"cpu"`` or ``"cuda"``.

    Parameters
    ----------
    requested : ``"auto"``, ``"cpu"`` or ``"cuda"``/``"cuda:N"``.
    wants_gpu : whether the method declared a GPU in its resources.
    allow_cpu_fallback : run on the CPU when a wanted GPU is missing, instead of failing.
    """
    if requested == "cpu":
        return "cpu"
    # "auto" gives a GPU only to methods that asked for one.
    has_gpu = cuda_available() if (wants_gpu or requested != "auto") else False
    if requested.startswith("cuda") and not has_gpu:
        raise DeviceError(f"device {requested!r} requested but no CUDA GPU is visible "
                          f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r})")
    if has_gpu:
        return requested if requested.startswith("cuda") else "cuda"
    if wants_gpu and not allow_cpu_fallback:
        raise DeviceError(
            "this method asked for a GPU but none is visible "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); set "
            "'allow_cpu_fallback: true' in the config (or pass --allow-cpu-fallback) to run on the CPU")
    return "cpu"
