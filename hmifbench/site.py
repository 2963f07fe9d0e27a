"""Cluster site settings: account, partitions, QoS, GPU type and partition limits.

They live in one small untracked YAML file, ``site.yaml`` beside the Snakefile (or the file
named by ``$HMIFBENCH_SITE``), so that a fresh clone plus that file is a working cluster setup
and no tracked file is edited. ``slurm/site.example.yaml`` documents every key; the schema is
``hmifbench/schemas/site.schema.yaml`` (shipped with the package).

Snakemake profiles are static YAML, so the profile cannot read this file itself: the workflow
does (``workflow/rules/common.smk``) and turns it into per-rule resources that the SLURM
executor plugin understands (``slurm_account``, ``slurm_partition``, ``qos``, ``constraint``,
``gpu_model``). ``hmifbench plan`` checks the jobs' requests against the partition limits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from hmifbench.config import _schema_errors
from hmifbench.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "site.schema.yaml"
ENV_VAR = "HMIFBENCH_SITE"


@dataclass(frozen=True)
class Partition:
    """One SLURM partition and its per-node limits (None: not stated, not checked)."""

    name: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gpu_model: str | None = None
    max_runtime_min: int | None = None
    max_mem_mb: int | None = None
    max_threads: int | None = None
    max_gpus: int | None = None


@dataclass(frozen=True)
class Site:
    """Validated site settings; ``path`` is None when no site file exists."""

    path: Path | None = None
    account: str | None = None
    qos: str | None = None
    cpu: Partition = Partition()
    gpu: Partition = Partition()

    def partition(self, gpu: bool) -> Partition:
        return self.gpu if gpu else self.cpu

    def slurm_resources(self, gpu: bool) -> dict:
        """The SLURM plugin's resources for a job with (``gpu=True``) or without a GPU.

        Keys that are not set are left out, so SLURM's defaults apply. Every job of one group
        gets the same dict (a group's string resources must agree), which is why a GPU group's
        evaluate jobs carry the GPU partition's settings too.
        """
        part = self.partition(gpu)
        res = {"slurm_account": self.account, "slurm_partition": part.name,
               "qos": part.qos or self.qos, "constraint": part.constraint,
               "gpu_model": part.gpu_model if gpu else None}
        return {k: v for k, v in res.items() if v is not None}


def site_path(repo: Path = REPO) -> Path:
    """Where the site file is looked for: ``$HMIFBENCH_SITE``, else ``site.yaml`` in ``repo``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path(repo) / "site.yaml"


def load_site(path=None, repo: Path = REPO) -> Site:
    """Read and validate the site file; an absent default file gives SLURM's defaults.

    ``path`` names the file; else ``$HMIFBENCH_SITE``; else ``site.yaml`` in ``repo`` (the
    folder of the Snakefile).

    Raises
    ------
    ConfigError
        The file named by ``$HMIFBENCH_SITE`` does not exist, is not YAML, or a key is wrong
        (the message names the file and the key).
    """
    explicit = path is not None or ENV_VAR in os.environ
    path = Path(path) if path is not None else site_path(repo)
    if not path.exists():
        if explicit:
            raise ConfigError(f"site file {path} does not exist"
                              + (f" (named by ${ENV_VAR})" if ENV_VAR in os.environ else ""))
        return Site()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"site file {path} is not valid YAML: {err}") from None
    return parse_site(data, path)


def parse_site(data, path=None) -> Site:
    """Validate a site mapping (as read from the file) and build a :class:`Site`."""
    where = f"site file {path}" if path else "site settings"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a mapping of keys to values")
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    errors = [e.replace("config key", "key", 1) for e in _schema_errors(data, schema)]
    cpu_model = (data.get("partitions") or {}).get("cpu", {})
    if isinstance(cpu_model, dict) and "gpu_model" in cpu_model:
        errors.append("key partitions.cpu.gpu_model: a GPU type belongs to partitions.gpu")
    if errors:
        raise ConfigError(f"invalid {where}:\n  " + "\n  ".join(errors))
    parts = data.get("partitions") or {}
    cpu = Partition(**parts.get("cpu", {}))
    gpu = Partition(**parts["gpu"]) if "gpu" in parts else cpu
    return Site(path=path, account=data.get("account"), qos=data.get("qos"), cpu=cpu, gpu=gpu)
