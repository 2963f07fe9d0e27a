"""How many cluster jobs a configuration submits with the slurm profile (a dry run, no cluster).

Runs Snakemake's own dry run with the SLURM profile's settings (the GPU cap, --cores) and
records every job that would be handed to the executor: a group job counts once, a local rule
not at all. For each submitted job it also computes what it would ask SLURM for, the way the
executor does. The recording is :func:`hmifbench.plan.dry_run`, which ``hmifbench plan`` uses
too; this script adds a stand-in configuration of any shape.

    python tests/cluster/count_jobs.py --configfile config/paper.yaml      # a real config (or: hmifbench plan)
    python tests/cluster/count_jobs.py --shape 4 6 12 12 --gpu-entries 4   # a stand-in

The stand-in has the given shape (datasets × degradations × method entries × test scenes).
Its datasets are the registered real ones with invented scene names and an empty placeholder
manifest, so their download step counts as done; no file is read in a dry run. Its entries
are ``upsample``/``gsa`` variants and, for ``--gpu-entries``, the GPU probe methods of
tests/cluster/plugins (every other one trains on the dataset first, as deep methods do).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml

PLUGINS = Path(__file__).resolve().parent / "plugins"


def standin_config(root: Path, n_datasets, n_degradations, n_entries, n_scenes, gpu_entries=0):
    from hmifbench.datasets import DATASETS, PROTOCOLS

    names = [d for d in DATASETS if d != "synthetic"][:n_datasets]
    if len(names) < n_datasets:
        raise SystemExit(f"only {len(names)} real datasets are registered: {names}")
    data_root = root / "data"
    for d in names:  # a download that counts as done: the dry run only checks it exists
        (data_root / d).mkdir(parents=True, exist_ok=True)
        (data_root / d / "manifest.json").write_text("{}")
    scenes = [f"s{i:02d}" for i in range(1, n_scenes + 1)]
    train = [f"t{i:02d}" for i in range(1, 5)]
    methods = {}
    for i in range(n_entries - gpu_entries):
        base = ("upsample", "gsa")[i % 2]
        methods[f"{base}-v{i}"] = {"method": base}
    for i in range(gpu_entries):
        methods[f"deep-v{i}"] = {"method": ("gpu_probe", "gpu_trained_probe")[i % 2]}
    return {
        "data_root": str(data_root),
        "plugins": [str(PLUGINS)],
        "datasets": {d: {"scenes": scenes, "train_scenes": train} for d in names},
        "degradations": list(PROTOCOLS)[:n_degradations],
        "methods": methods,
    }


def submitted_jobs(configfile: Path, workdir: Path, cores: int, profile: str | None = None,
                   extra=()):
    """Dry-run the workflow; one record per job the executor would submit (hmifbench.plan)."""
    from hmifbench.plan import dry_run

    return dry_run(configfile, workdir, cores, profile, extra, log=workdir / "dryrun.log")["submitted"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", type=Path, help="a workflow config (default: a stand-in)")
    ap.add_argument("--shape", type=int, nargs=4, default=[4, 6, 12, 12],
                    metavar=("DATASETS", "DEGRADATIONS", "ENTRIES", "SCENES"))
    ap.add_argument("--gpu-entries", type=int, default=0, help="stand-in entries that need a GPU")
    ap.add_argument("--cores", type=int, default=8, help="--cores of the run (default 8)")
    ap.add_argument("--profile", help="profile folder (default: the repository's slurm/)")
    ap.add_argument("--json", action="store_true", help="print every submitted job as JSON")
    ap.add_argument("extra", nargs="*", help="more snakemake options, after --")
    args = ap.parse_args(argv)
    from hmifbench.plan import summarise

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        configfile = args.configfile
        if configfile is None:
            configfile = tmp / "config.yaml"
            configfile.write_text(yaml.safe_dump(standin_config(tmp, *args.shape, args.gpu_entries)))
        records = submitted_jobs(configfile.resolve(), tmp, args.cores, args.profile, args.extra)
    if args.json:
        print(json.dumps(records, indent=1, default=str))
    print(json.dumps(summarise(records), indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
