"""What a run will submit and cost, before it starts (``hmifbench plan``).

A Snakemake dry run with the SLURM profile records every job that would be handed to the
executor (a group job counts once, a local rule not at all) and computes its SLURM request the
way the executor does (``GroupResources.basic_layered`` with ``run_local=False``). The fuse and
train jobs are then priced from earlier run records (``results/fused/**/run.json``:
``timing.fuse_s``, ``timing.peak_rss_mb``; ``results/models/**/state.json``: ``timing.train_s``)
where some exist for the same entry × dataset × degradation, and otherwise from the declared
runtime, which is a wall-clock limit and so an upper bound. Finally every submitted job's
request is checked against the site's partition limits (:mod:`hmifbench.site`).

Cost model (one line each, so the numbers can be checked by hand):

* hours of one job  = mean measured seconds / 3600, or declared runtime minutes / 60;
* CPU-hours         = Σ hours × threads of the job (the cores it holds);
* GPU-hours         = Σ hours × GPUs of the job.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hmifbench.errors import ConfigError, HmifError
from hmifbench.site import REPO, Site, load_site

# Rules whose jobs are priced per entry × dataset × degradation; the rest (prepare, simulate,
# evaluate, score_batch) are summed at their declared runtimes as "other jobs".
FUSE_PREFIX, TRAIN_PREFIX = "fuse_", "train_"


def profile_dir(name: str = "slurm") -> Path:
    """The profile folder shipped at the repository root (``slurm`` or ``local``)."""
    path = REPO / name
    if not (path / "config.v8+.yaml").is_file():
        raise HmifError(f"no profile {name!r} in {REPO} (known: slurm, local)")
    return path


# --------------------------------------------------------------------------- the dry run


def _runs_locally(workflow, rule) -> bool:
    # job.is_local is True for every job in a dry run; this is the rule-level answer the
    # cluster executor uses (Workflow.is_local without its local_exec short cut).
    return rule.group is None and (rule.name in workflow._localrules or rule.norun)


def _int_resources(job) -> dict:
    return {k: v for k, v in job.resources.items() if isinstance(v, (int, str))}


def _job_detail(job) -> dict:
    return {"rule": job.rule.name, "output": str(job.output[0]) if job.output else "",
            "wildcards": dict(job.wildcards), "threads": job.threads,
            "resources": _int_resources(job)}


def dry_run(configfile, workdir, cores: int = 8, profile: str | Path | None = None,
            extra=(), log=None) -> dict:
    """Dry-run the workflow; return what the executor would submit.

    Returns
    -------
    dict
        ``submitted``: one record per SLURM job (``group``, ``rules`` (rule → count),
        ``resources`` (the request), ``jobs`` (each rule job: rule, output, wildcards,
        threads, resources), ``repeats``); ``local``: rule → count of jobs run on the
        submit host.
    """
    from snakemake import cli
    from snakemake.executors import dryrun
    from snakemake.resources import GroupResources

    submitted, local, seen = [], collections.Counter(), set()
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
        details = [_job_detail(j) for j in new]
        if job.is_group():
            res = GroupResources.basic_layered(
                toposorted_jobs=job.toposorted, constraints=job.global_resources,
                run_local=False, additive_resources=["runtime"], sortby=["runtime"])
            submitted.append({"group": job.groupid, "rules": rules, "resources": res,
                              "jobs": details, "repeats": len(jobs) - len(new)})
        elif _runs_locally(self.workflow, job.rule):
            local.update(rules)
        else:
            submitted.append({"group": None, "rules": rules, "resources": _int_resources(job),
                              "jobs": details, "repeats": 0})
        return original(self, job)

    profile = Path(profile) if profile else profile_dir("slurm")
    argv = ["-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile",
            str(configfile), "--cores", str(cores), "--profile", str(profile), "-n", *extra]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(log) if log else Path(tmp) / "dryrun.log"
        dryrun.Executor.run_job = record
        cwd = os.getcwd()  # --directory makes Snakemake change into the work folder
        try:
            with _output_to(log):
                cli.main(argv)
        except SystemExit as stop:
            if stop.code:
                raise HmifError(f"snakemake dry run failed (exit {stop.code}):\n"
                                + log.read_text()[-3000:]) from None
        finally:
            dryrun.Executor.run_job = original
            os.chdir(cwd)
    return {"submitted": submitted, "local": dict(sorted(local.items()))}


@contextlib.contextmanager
def _output_to(path: Path):
    """Send file descriptors 1 and 2 (Snakemake prints every job of a dry run) to ``path``."""
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(path, "w") as sink:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(sink.fileno(), 1), os.dup2(sink.fileno(), 2)
            yield
    finally:
        sys.stdout.flush(), sys.stderr.flush()
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)


def summarise(records) -> dict:
    """Counts over submitted jobs: per group or rule, rule jobs inside, GPUs, largest request."""
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


# --------------------------------------------------------------------------- run records


@dataclass
class Measured:
    """Timings of earlier runs of one entry × dataset × degradation."""

    fuse_s: list = field(default_factory=list)
    train_s: list = field(default_factory=list)
    peak_rss_mb: list = field(default_factory=list)


def read_run_records(results_dirs) -> dict:
    """(entry, dataset, degradation) → :class:`Measured`, from run.json and state.json files.

    Only successful fuse runs count (a failed run's time says nothing about a full one).
    Unreadable records are skipped: a plan must not fail on a half-written file.
    """
    out = collections.defaultdict(Measured)
    for root in map(Path, results_dirs):
        for path in sorted(root.glob("fused/*/*/*/*/run.json")):
            record = _read(path)
            timing = record.get("timing") or {}
            if record.get("status") != "ok" or timing.get("fuse_s") is None:
                continue
            entry, dataset, degradation = path.parts[-5:-2]
            m = out[(entry, dataset, degradation)]
            m.fuse_s.append(float(timing["fuse_s"]))
            if timing.get("peak_rss_mb") is not None:
                m.peak_rss_mb.append(float(timing["peak_rss_mb"]))
        for path in sorted(root.glob("models/*/*/*/state.json")):
            timing = _read(path).get("timing") or {}
            if timing.get("train_s") is not None:
                entry, dataset, degradation = path.parts[-4:-1]
                out[(entry, dataset, degradation)].train_s.append(float(timing["train_s"]))
    return dict(out)


def _read(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


# --------------------------------------------------------------------------- the plan


def _entry_key(job: dict):
    """(entry, dataset, degradation) of a fuse or train job, from its output path."""
    parts = Path(job["output"]).parts  # results/fused/<entry>/<ds>/<deg>/<scene>/run.json
    return parts[2], parts[3], parts[4]


def _hours(job: dict, seconds: list) -> tuple[float, str]:
    if seconds:
        return statistics.fmean(seconds) / 3600, "measured"
    return job["resources"].get("runtime", 0) / 60, "declared"


def estimate(submitted, measured: dict) -> tuple[list, dict]:
    """Rows per entry × dataset × degradation, and the totals of the other jobs."""
    rows = {}
    other = {"jobs": 0, "cpu_h": 0.0}
    for record in submitted:
        for job in record["jobs"]:
            rule = job["rule"]
            kind = ("fuse" if rule.startswith(FUSE_PREFIX)
                    else "train" if rule.startswith(TRAIN_PREFIX) else None)
            if kind is None:
                other["jobs"] += 1
                other["cpu_h"] += job["resources"].get("runtime", 0) / 60 * job["threads"]
                continue
            key = _entry_key(job)
            m = measured.get(key, Measured())
            hours, source = _hours(job, m.fuse_s if kind == "fuse" else m.train_s)
            row = rows.setdefault(key, {
                "entry": key[0], "dataset": key[1], "degradation": key[2],
                "fuse_jobs": 0, "train_jobs": 0, "fuse_h_each": None, "fuse_source": None,
                "train_h_each": None, "train_source": None, "cpu_h": 0.0, "gpu_h": 0.0,
                "fuse_runtime_min": None, "train_runtime_min": None,
                "mem_mb": 0, "measured_peak_mb": max(m.peak_rss_mb, default=None)})
            row[f"{kind}_jobs"] += 1
            row[f"{kind}_h_each"], row[f"{kind}_source"] = hours, source
            row[f"{kind}_runtime_min"] = job["resources"].get("runtime", 0)
            row["cpu_h"] += hours * job["threads"]
            row["gpu_h"] += hours * job["resources"].get("gpu", 0)
            if kind == "fuse":
                row["mem_mb"] = max(row["mem_mb"], job["resources"].get("mem_mb", 0))
    return sorted(rows.values(), key=lambda r: (r["entry"], r["dataset"], r["degradation"])), other


def _partition_of(record, site: Site):
    name = record["resources"].get("slurm_partition")
    gpu = bool(record["resources"].get("gpu"))
    part = site.partition(gpu)
    if name is not None and name not in (site.cpu.name, site.gpu.name):
        return None  # set outside the site file (e.g. --set-resources): limits unknown
    return part


def misfits(submitted, site: Site) -> list[dict]:
    """Submitted jobs whose request exceeds their partition's limits (SLURM would refuse or
    never start them)."""
    out = []
    for record in submitted:
        part = _partition_of(record, site)
        if part is None:
            continue
        res = record["resources"]
        checks = [("runtime", res.get("runtime", 0), part.max_runtime_min, "min"),
                  ("mem_mb", res.get("mem_mb", 0), part.max_mem_mb, "MB"),
                  ("cpus", res.get("_cores", 1), part.max_threads, "cores"),
                  ("gpu", res.get("gpu", 0), part.max_gpus, "GPUs")]
        problems = [f"{what} {value:,} > {limit:,} {unit}" for what, value, limit, unit in checks
                    if limit is not None and value > limit]
        if problems:
            out.append({"job": record["group"] or record["jobs"][0]["rule"],
                        "partition": part.name, "rules": record["rules"],
                        "wildcards": _shared_wildcards(record["jobs"]),
                        "request": {k: res.get(k) for k in ("runtime", "mem_mb", "_cores", "gpu")},
                        "problems": problems})
    return sorted(out, key=lambda m: (m["job"], sorted(m["rules"]), sorted(m["wildcards"].items())))


def _shared_wildcards(jobs) -> dict:
    """The wildcard values all jobs of a submission share (a batch: dataset, degradation)."""
    common = dict(jobs[0]["wildcards"])
    for job in jobs[1:]:
        common = {k: v for k, v in common.items() if job["wildcards"].get(k) == v}
    return common


def under_requested(rows) -> list[dict]:
    """Entries whose earlier runs needed more memory or time than their jobs request: the job
    would be killed (memory: retried once with twice the memory; time: not helped by a retry)."""
    out = []
    for row in rows:
        problems = []
        peak = row["measured_peak_mb"]
        if row["fuse_jobs"] and peak is not None and peak > row["mem_mb"]:
            problems.append(f"measured peak {peak:,.0f} MB > requested {row['mem_mb']:,} MB")
        for kind in ("fuse", "train"):
            if row[f"{kind}_source"] == "measured":
                took, limit = row[f"{kind}_h_each"] * 60, row[f"{kind}_runtime_min"]
                if took > limit:
                    problems.append(f"{kind} measured {took:,.0f} min > requested {limit:,} min")
        if problems:
            out.append({k: row[k] for k in ("entry", "dataset", "degradation")}
                       | {"problems": problems})
    return out


def unlisted_datasets(config: dict, workdir: Path) -> list[str]:
    """Datasets whose scene lists are read from files not downloaded yet: not in the dry run."""
    from hmifbench.datasets import get_dataset

    out = []
    root = Path(workdir) / config.get("data_root", "resources/datasets")
    for name, spec in (config.get("datasets") or {}).items():
        spec = spec or {}
        try:
            lists_from_files = get_dataset(name).splits_from_files
        except HmifError:
            continue  # the dry run reports an unknown dataset itself
        needs_files = "scenes" not in spec or "train_scenes" not in spec
        if lists_from_files and needs_files and not (root / name / "manifest.json").exists():
            out.append(name)
    return out


def without_datasets(submitted, datasets) -> list[dict]:
    """Drop the jobs of ``datasets`` whose scene lists are not known yet.

    Until its download checkpoint has run, such a dataset has no scenes in the dry run, yet
    its per-batch listings (``score_batch``) still appear, as empty batches: counting them
    would add a SLURM job per entry × degradation that a real run never submits in that form.
    """
    if not datasets:
        return submitted
    out = []
    for record in submitted:
        jobs = [j for j in record["jobs"] if j["wildcards"].get("dataset") not in datasets]
        if len(jobs) == len(record["jobs"]):
            out.append(record)
        elif jobs:  # not expected (groups hold one dataset), but keep the counts right
            rules = dict(collections.Counter(j["rule"] for j in jobs))
            out.append({**record, "jobs": jobs, "rules": rules})
    return out


def make_plan(configfile, workdir=".", cores: int = 8, site: Site | None = None,
              records=None, profile=None) -> dict:
    """The whole plan as one JSON-ready dict (what ``hmifbench plan --json`` prints)."""
    configfile, workdir = Path(configfile).resolve(), Path(workdir).resolve()
    try:
        config = yaml.safe_load(configfile.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read config {configfile}: {err}") from None
    site = site if site is not None else load_site()
    not_counted = unlisted_datasets(config, workdir)
    run = dry_run(configfile, workdir, cores, profile)
    submitted = without_datasets(run["submitted"], not_counted)
    measured = read_run_records(records or [workdir / "results"])
    rows, other = estimate(submitted, measured)
    summary = summarise(submitted)
    return {
        "configfile": str(configfile), "workdir": str(workdir), "cores": cores,
        "site": str(site.path) if site.path else None,
        "rule_jobs": summary["rule_jobs_inside"], "local_rule_jobs": run["local"],
        "slurm_jobs": summary["submitted"], "slurm_jobs_by_kind": summary["by_group_or_rule"],
        "slurm_jobs_with_gpu": summary["submissions_with_gpu"],
        "largest_request": {"runtime_min": summary["max_runtime_min"],
                            "mem_mb": summary["max_mem_mb"]},
        "estimates": rows,
        "other_jobs": other,
        "total": {"cpu_h": sum(r["cpu_h"] for r in rows) + other["cpu_h"],
                  "gpu_h": sum(r["gpu_h"] for r in rows)},
        "limits_checked": bool(site.path and (site.cpu.name or site.gpu.name)),
        "misfits": misfits(submitted, site),
        "under_requested": under_requested(rows),
        "not_counted": not_counted,
    }


# --------------------------------------------------------------------------- printing


def _fmt_h(value) -> str:
    return "-" if value is None else f"{value:.3g}" if value < 10 else f"{value:,.0f}"


def format_plan(plan: dict) -> str:
    """The plan as the table ``hmifbench plan`` prints."""
    lines = [f"plan for {plan['configfile']} (--cores {plan['cores']}, profile slurm, "
             f"site file: {plan['site'] or 'none'})", ""]
    rule_jobs = plan["rule_jobs"]
    lines.append(f"rule jobs submitted to SLURM: {sum(rule_jobs.values()):,}")
    lines += [f"  {rule:<28} {n:>7,}" for rule, n in rule_jobs.items()]
    if plan["local_rule_jobs"]:
        lines.append("run on the submit host: " + ", ".join(
            f"{rule} {n}" for rule, n in plan["local_rule_jobs"].items()))
    lines.append(f"SLURM jobs after grouping: {plan['slurm_jobs']:,} "
                 f"({plan['slurm_jobs_with_gpu']} with a GPU)")
    lines += [f"  {kind:<28} {n:>7,}" for kind, n in plan["slurm_jobs_by_kind"].items()]
    big = plan["largest_request"]
    lines += [f"largest request: {big['runtime_min']:,} min, {big['mem_mb']:,} MB", ""]

    lines.append("estimated cost per entry x dataset x degradation (h/job: measured = mean of "
                 "earlier run records, declared = the runtime limit, an upper bound)")
    rows = plan["estimates"]
    w = [max([len(name)] + [len(r[name]) for r in rows]) for name in ("entry", "dataset", "degradation")]
    key_w = sum(w) + 2
    head = (f"{'entry':<{w[0]}} {'dataset':<{w[1]}} {'degradation':<{w[2]}} {'fuse':>5} {'h/job':>7} "
            f"{'from':<9} {'train':>5} {'h/job':>7} {'from':<9} {'CPU-h':>8} {'GPU-h':>7}")
    lines += [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['entry']:<{w[0]}} {r['dataset']:<{w[1]}} {r['degradation']:<{w[2]}} {r['fuse_jobs']:>5} "
            f"{_fmt_h(r['fuse_h_each']):>7} {r['fuse_source'] or '-':<9} {r['train_jobs']:>5} "
            f"{_fmt_h(r['train_h_each']):>7} {r['train_source'] or '-':<9} "
            f"{_fmt_h(r['cpu_h']):>8} {_fmt_h(r['gpu_h']):>7}")
    pad = key_w + 48
    other, total = plan["other_jobs"], plan["total"]
    lines.append(f"{'other jobs (prepare, simulate, evaluate) at their runtime limits':<{pad}} "
                 f"{_fmt_h(other['cpu_h']):>8} {'0':>7}   ({other['jobs']:,} jobs)")
    lines.append(f"{'total':<{pad}} {_fmt_h(total['cpu_h']):>8} {_fmt_h(total['gpu_h']):>7}")
    lines.append("")
    if not plan["limits_checked"]:
        lines.append("partition limits: not checked (no site file with partitions; "
                     "see slurm/site.example.yaml)")
    if plan["misfits"]:
        lines.append(f"SLURM jobs that do not fit their partition ({len(plan['misfits'])}):")
        for m in plan["misfits"]:
            methods = [r for r in m["rules"]
                       if r.startswith((FUSE_PREFIX, TRAIN_PREFIX)) and r != m["job"]]
            where = " ".join(methods + [f"{k}={v}" for k, v in m["wildcards"].items()])
            lines.append(f"  {m['job']} [{where}] on {m['partition'] or '-'}: "
                         + "; ".join(m["problems"]))
    elif plan["limits_checked"]:
        lines.append("every SLURM job fits its partition's limits")
    if plan["under_requested"]:
        lines.append("entries whose earlier runs needed more than their jobs request:")
        for u in plan["under_requested"]:
            lines.append(f"  {u['entry']} {u['dataset']} {u['degradation']}: " + "; ".join(u["problems"]))
    if plan["not_counted"]:
        lines.append("not counted: " + ", ".join(plan["not_counted"]) + " (their scene lists "
                     "are read from the downloaded files; download them first, e.g. "
                     "`hmifbench download <name>`, then plan again)")
    return "\n".join(lines)
