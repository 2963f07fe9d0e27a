"""Probe methods for the cluster tests: they fuse like ``upsample`` and record where they ran.

Each probe stores, in its ``run.json`` extras (or its train state), the device it was given
and the job environment that SLURM set (``CUDA_VISIBLE_DEVICES``, job id, partition),
so a test can check which jobs got a GPU. Not a fusion method: test plugin only.

* ``gpu_probe``: declares ``resources.gpu = 1`` (like a deep method).
* ``gpu_trained_probe``: the same, and trains on a dataset first (a train job, also on a GPU).
* ``oom_probe``: no GPU; its first run anywhere kills itself with SIGKILL, as the kernel's
  out-of-memory killer would, so the job fails with nothing recorded and the workflow must
  retry it (with more memory). Each run appends ``<SLURM job id> killed|ran`` to
  ``$HMIFBENCH_PROBE_DIR/oom_probe.log``.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from hmifbench.methods.base import Fused, Method, Resources

ENV_KEYS = ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID", "SLURM_JOB_PARTITION", "SLURM_CPUS_PER_TASK")


def job_environment() -> dict:
    """The scheduler-set variables of this process (None where unset)."""
    return {k: os.environ.get(k) for k in ENV_KEYS}


def _upsample(problem):
    from hmifbench.observation import upsample_bicubic

    return upsample_bicubic(problem.lr_hsi, problem.scale, problem.offset)


class _Probe(Method):
    family = "linear"
    blind = True
    citation = "hmifbench cluster test probe"
    licence = "BSD-3-Clause (hmifbench)"

    def fuse(self, problem, *, state=None, seed=0, device="auto", progress=None):
        return Fused(_upsample(problem), extras={"device": device, "env": job_environment(),
                                                 "state": state})


class GpuProbe(_Probe):
    """Asks for one GPU."""

    name = "gpu_probe"
    family = "deep"
    resources = Resources(gpu=1, mem_mb=500, runtime_min=5)


class GpuTrainedProbe(_Probe):
    """Asks for one GPU and trains on the train split first."""

    name = "gpu_trained_probe"
    family = "deep"
    training = "dataset"
    resources = Resources(gpu=1, mem_mb=500, runtime_min=5)

    def fit(self, pairs, *, seed=0, device="auto", progress=None, workdir=None):
        return {"n_pairs": len(pairs), "device": device, "env": job_environment()}


class OomProbe(_Probe):
    """Killed (SIGKILL) on its first run, like an out-of-memory kill; fine afterwards."""

    name = "oom_probe"
    resources = Resources(gpu=0, mem_mb=500, runtime_min=5)

    def fuse(self, problem, *, state=None, seed=0, device="auto", progress=None):
        log = Path(os.environ.get("HMIFBENCH_PROBE_DIR", ".")) / "oom_probe.log"
        first = not log.exists()
        with log.open("a") as f:
            f.write(f"{os.environ.get('SLURM_JOB_ID')} {'killed' if first else 'ran'}\n")
        if first:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().fuse(problem, state=state, seed=seed, device=device, progress=progress)
