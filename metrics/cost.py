"""Computational cost of a method: parameters, FLOPs, wall time, peak memory.

torch is imported inside the functions that need it, so ``hmifbench.metrics`` imports (and
the workflow builds its DAG) without torch.

Conventions (why each was chosen: docs/metrics.md § Cost):

* **parameters** — ``sum(p.numel())`` over ``module.parameters()`` (shared tensors counted
  once); trainable ones separately; buffers (e.g. BatchNorm running statistics) reported apart.
* **FLOPs** — counted by ``torch.utils.flop_counter.FlopCounterMode`` at the aten level:
  matrix products, convolutions and attention, **2 FLOPs per multiply–add** (so MACs =
  FLOPs / 2, also reported). Element-wise operations, normalisations and interpolation are
  not counted. FLOPs depend on the input size, which the caller must record with them.
* **time** — wall time (``time.perf_counter``) of whole calls, after warm-up calls, median
  of the repeats; on CUDA ``torch.cuda.synchronize()`` before starting and before stopping
  the clock, since kernels run asynchronously.
* **memory** — peak resident set size of the process (``resource.getrusage``; the peak of
  the *process* so far, so measure in a fresh process per method) and peak GPU memory
  allocated / reserved by PyTorch's caching allocator since the last reset.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def count_parameters(module) -> dict[str, int]:
    """``{"total", "trainable", "buffers"}`` element counts of a ``torch.nn.Module``."""
    params = {id(p): p for p in module.parameters()}.values()
    buffers = {id(b): b for b in module.buffers()}.values()
    return {
        "total": int(sum(p.numel() for p in params)),
        "trainable": int(sum(p.numel() for p in params if p.requires_grad)),
        "buffers": int(sum(b.numel() for b in buffers)),
    }


def count_flops(fn: Callable, *args, **kwargs) -> dict[str, int]:
    """FLOPs of one call ``fn(*args, **kwargs)`` (a module or any callable using torch).

    Runs the call once under ``torch.no_grad()`` and ``FlopCounterMode``. Returns
    ``{"flops": F, "macs": F // 2}`` with the 2-FLOPs-per-multiply–add convention.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        fn(*args, **kwargs)
    flops = int(counter.get_total_flops())
    return {"flops": flops, "macs": flops // 2}


def _synchronize(device) -> None:
    if device is None:
        return
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps" and hasattr(torch, "mps"):
        torch.mps.synchronize()


def time_call(fn: Callable, *args, repeats: int = 5, warmup: int = 1, device=None,
              **kwargs) -> dict[str, Any]:
    """Wall time of ``fn(*args, **kwargs)``: ``warmup`` untimed calls, then ``repeats`` timed.

    ``device`` (e.g. ``"cuda"``, a ``torch.device``) makes the timer synchronise that device
    before starting and before stopping the clock; ``None`` means CPU work only (no torch
    import). Returns ``{"median_s", "min_s", "times_s", "repeats", "warmup", "result"}``
    (``result`` the last call's return value).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError("repeats must be >= 1 and warmup >= 0")
    result = None
    for _ in range(warmup):
        result = fn(*args, **kwargs)
    _synchronize(device)
    times = []
    for _ in range(repeats):
        _synchronize(device)
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        _synchronize(device)
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times,
            "repeats": repeats, "warmup": warmup, "result": result}


class Stopwatch:
    """Context manager timing a block of code, synchronising ``device`` at both ends.

    >>> with Stopwatch() as sw:
    ...     _ = sum(range(1000))
    >>> sw.seconds >= 0
    True
    """

    def __init__(self, device=None):
        self.device = device
        self.seconds = float("nan")

    def __enter__(self):
        _synchronize(self.device)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        _synchronize(self.device)
        self.seconds = time.perf_counter() - self._t0
        return False


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far, in bytes (``getrusage`` ru_maxrss,
    which Linux reports in KiB and macOS in bytes)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def reset_peak_gpu_memory(device=None) -> None:
    """Reset PyTorch's CUDA peak-memory counters (no-op without CUDA)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats(device)


def peak_gpu_memory(device=None) -> dict[str, int] | None:
    """``{"allocated", "reserved"}`` peak CUDA memory in bytes since the last reset, or ``None``
    when CUDA is unavailable."""
    import torch

    if not torch.cuda.is_available():
        return None
    return {"allocated": int(torch.cuda.max_memory_allocated(device)),
            "reserved": int(torch.cuda.max_memory_reserved(device))}
