"""Run records: what ran, on what, with which code, and what it cost.

Every fuse/train/evaluate record carries :func:`provenance`: hmifbench version, git commit
(when the code runs from a checkout), Python and package versions, host, device, threads,
seed and the hash of the configuration.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

PACKAGES = ("numpy", "scipy", "spectral", "scikit-image", "torch", "snakemake", "pandas")


def config_hash(config) -> str:
    """sha256 (first 16 hex digits) of a config's canonical JSON."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def git_commit() -> str | None:
    """The commit of the checkout hmifbench runs from, with ``-dirty`` if it has changes."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ("-dirty" if dirty else "")) or None


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def threads() -> dict:
    info = {"cpu_count": os.cpu_count(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    return info


def provenance(config=None, seed: int | None = None, device: str | None = None) -> dict:
    """A dict describing the code and machine a result came from."""
    from hmifbench import __version__

    return {
        "hmifbench": __version__, "git_commit": git_commit(),
        "python": platform.python_version(), "platform": platform.platform(),
        "host": socket.gethostname(), "packages": package_versions(), "threads": threads(),
        "device": device, "seed": seed,
        "config_hash": config_hash(config) if config is not None else None,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux reports kB)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20


@contextmanager
def measure(device: str | None = None):
    """Time a block (wall seconds, CUDA synchronised when torch runs on a GPU) and record
    peak RSS and peak GPU memory. Yields a dict filled in when the block ends."""
    torch = sys.modules.get("torch")
    cuda = bool(torch is not None and device and str(device).startswith("cuda"))
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    stats: dict = {}
    start = time.perf_counter()
    try:
        yield stats
    finally:
        if cuda:
            torch.cuda.synchronize()
        stats["wall_s"] = time.perf_counter() - start
        stats["peak_rss_mb"] = peak_rss_mb()
        stats["peak_gpu_mb"] = (torch.cuda.max_memory_allocated() / 2**20) if cuda else None
