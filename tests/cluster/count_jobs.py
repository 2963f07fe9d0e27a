"""How many cluster jobs a configuration submits with profiles/slurm (a dry run, no cluster).

Runs Snakemake's own dry run with the SLURM profile's settings (group components, the GPU cap,
--cores) and records every job that would be handed to the executor: a group job counts once,
a local rule not at all. For each submitted job it also computes what it would ask SLURM for,
the way the executor does (``GroupResources.basic_layered`` with ``run_local=False``).

    python tests/cluster/count_jobs.py --configfile config/paper.yaml      # a real config
    python tests/cluster/count_jobs.py --shape 4 6 12 12 --gpu-entries 4   # a stand-in

The stand-in has the given shape (datasets × degradations × method entries × test scenes).
Its datasets are the registered real ones with invented scene names and an empty placeholder
manifest, so their download step counts as done; no file is read in a dry run. Its entries
are ``upsample``/``gsa`` variants and, for ``--gpu-entries``, the GPU probe methods of
tests/cluster/plugins (every other one trains on the dataset first, as deep methods do).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
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


def _runs_locally(workflow, rule) -> bool:
    # job.is_local is True for every job in a dry run; this is the rule-level answer the
    # cluster executor uses (Workflow.is_local without its local_exec short cut).
    return rule.group is None and (rule.name in workflow._localrules or rule.norun)


def submitted_jobs(configfile: Path, workdir: Path, cores: int, profile: str, extra=()):
    """Dry-run the workflow; return one record per job the executor would submit."""
    from snakemake import cli
    from snakemake.executors import dryrun
    from snakemake.resources import GroupResources

    records = []
    seen = set()
    original = dryrun.Executor.run_job

    def record(self, job):
        # When a dry run re-processes its DAG (checkpoints), jobs it has already "run" have
        # no outputs and count as to-do again, so a later group may repeat them. A real run
        # would not resubmit finished jobs: count each rule job once, and a group only for
        # the jobs it adds (its computed request then includes the repeats: an upper bound).
        jobs = list(job.jobs) if job.is_group() else [job]
        new = [j for j in jobs if j not in seen]
        seen.update(jobs)
        if not new:
            return original(self, job)
        rules = dict(collections.Counter(j.rule.name for j in new))
        if job.is_group():
            res = GroupResources.basic_layered(
                toposorted_jobs=job.toposorted, constraints=job.global_resources,
                run_local=False, additive_resources=["runtime"], sortby=["runtime"])
            records.append({"group": job.groupid, "rules": rules, "resources": res,
                            "repeats": len(jobs) - len(new)})
        elif not _runs_locally(self.workflow, job.rule):
            res = {k: v for k, v in job.resources.items() if isinstance(v, (int, str))}
            records.append({"group": None, "rules": rules, "resources": res, "repeats": 0})
        return original(self, job)

    dryrun.Executor.run_job = record
    argv = ["-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile",
            str(configfile), "--cores", str(cores), "--profile", profile, "-n", *extra]
    cwd = os.getcwd()
    log = workdir / "dryrun.log"
    saved = [os.dup(1), os.dup(2)]
    try:
        # Snakemake prints every job of a dry run: keep that in a log, not on the terminal.
        with open(log, "w") as sink:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(sink.fileno(), 1), os.dup2(sink.fileno(), 2)
            os.chdir(REPO)  # --profile profiles/slurm is resolved from here
            cli.main(argv)
    except SystemExit as stop:
        if stop.code:
            _restore(saved)
            raise SystemExit(f"snakemake dry run failed (exit {stop.code}):\n"
                             + log.read_text()[-3000:]) from None
    finally:
        _restore(saved)
        os.chdir(cwd)
        dryrun.Executor.run_job = original
    return records


def _restore(saved):
    sys.stdout.flush(), sys.stderr.flush()
    for fd, copy in zip((1, 2), saved):
        try:
            os.dup2(copy, fd)
        except OSError:
            pass


def summarise(records) -> dict:
    by_kind = collections.Counter(r["group"] or next(iter(r["rules"])) for r in records)
    gpu_jobs = [r for r in records if r["resources"].get("gpu")]
    jobs_inside = collections.Counter()
    for r in records:
        jobs_inside.update(r["rules"])
    return {
        "submitted": len(records),
        "by_group_or_rule": dict(sorted(by_kind.items())),
        "rule_jobs_inside": dict(sorted(jobs_inside.items())),
        "total_rule_jobs": sum(jobs_inside.values()),
        "submissions_with_gpu": len(gpu_jobs),
        "max_gpus_per_submission": max((r["resources"]["gpu"] for r in gpu_jobs), default=0),
        "cpu_groups_with_gpu": sum(1 for r in records if r["group"] == "fuse_evaluate_cpu"
                                   and r["resources"].get("gpu")),
        "max_runtime_min": max((r["resources"].get("runtime", 0) for r in records), default=0),
        "max_mem_mb": max((r["resources"].get("mem_mb", 0) for r in records), default=0),
        "dry_run_regrouped_submissions": sum(1 for r in records if r["repeats"]),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", type=Path, help="a workflow config (default: a stand-in)")
    ap.add_argument("--shape", type=int, nargs=4, default=[4, 6, 12, 12],
                    metavar=("DATASETS", "DEGRADATIONS", "ENTRIES", "SCENES"))
    ap.add_argument("--gpu-entries", type=int, default=0, help="stand-in entries that need a GPU")
    ap.add_argument("--cores", type=int, default=8, help="--cores of the run (default 8)")
    ap.add_argument("--profile", default="profiles/slurm")
    ap.add_argument("--json", action="store_true", help="print every submitted job as JSON")
    ap.add_argument("extra", nargs="*", help="more snakemake options, after --")
    args = ap.parse_args(argv)
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
