"""Checks of a finished tests/cluster/run_cluster_test.sh run (reads SLURM's own records).

    python tests/cluster/check_cluster_run.py WORKDIR

WORKDIR holds the two runs' exit codes (run1.rc, run2.rc), logs (run1.log, run2.log), the
``scontrol show job -o`` records taken after each run (jobs_run1.txt, jobs_run2.txt), the
plugin's SLURM logs (.snakemake/slurm_logs) and the results. Run 1's config has a scene that
cannot be prepared ("broken"); run 2 is the same config without it (the resume). Prints one
line per check and exits 1 if any failed.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

ENTRIES = ["upsample", "gsa", "oom_probe", "gpu_probe", "gpu_trained_probe"]
GPU_ENTRIES = {"gpu_probe", "gpu_trained_probe"}
SCENES = ["scene01", "scene02"]
PAIR = "synthetic/gauss-fwhm-x4"

failures: list[str] = []
passes: list[str] = []


def check(name: str, ok: bool, detail: str = "") -> bool:
    print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail and not ok else ""))
    (passes if ok else failures).append(name)
    return ok


def parse_scontrol(text: str) -> dict[str, dict]:
    """``scontrol show job -o`` lines → {job id: {key: value}}."""
    jobs = {}
    for line in text.splitlines():
        fields, key = {}, None
        for token in line.split(" "):
            k, sep, v = token.partition("=")
            if sep and re.fullmatch(r"[A-Za-z:/_]+", k):
                key, fields[k] = k, v
            elif key:  # a value with spaces
                fields[key] += " " + token
        if "JobId" in fields:
            jobs[fields["JobId"]] = fields
    return jobs


def kind(job: dict) -> str:
    """The Snakemake group or rule a SLURM job ran, from the comment the plugin sets."""
    comment = job.get("Comment", "")
    for name in ("prepare_simulate", "fuse_evaluate_cpu", "fuse_evaluate_gpu", "train_"):
        if comment.startswith("rule_" + name):
            return name.rstrip("_")
    return comment


def has_gpu(job: dict) -> bool:
    return any("gpu" in job.get(k, "") for k in ("TresPerJob", "TresPerNode", "TresPerTask", "TRES"))


def mem_mb(job: dict) -> int:
    m = re.search(r"mem=(\d+)([MG])", job.get("TRES", ""))
    return int(m.group(1)) * (1024 if m.group(2) == "G" else 1) if m else -1


def log_text(job: dict) -> str:
    path = Path(job.get("StdOut", ""))
    return path.read_text(errors="replace") if path.is_file() else ""


def main(work: Path) -> int:
    rc1, rc2 = (int((work / f"run{i}.rc").read_text()) for i in (1, 2))
    log1, log2 = ((work / f"run{i}.log").read_text(errors="replace") for i in (1, 2))
    mine = lambda jobs: {i: j for i, j in jobs.items() if j.get("WorkDir") == str(work)}  # noqa: E731
    after1 = mine(parse_scontrol((work / "jobs_run1.txt").read_text()))
    after2 = mine(parse_scontrol((work / "jobs_run2.txt").read_text()))
    run1 = after1
    run2 = {i: j for i, j in after2.items() if i not in after1}
    print(f"SLURM jobs: run 1 {sorted(run1, key=int)}, run 2 {sorted(run2, key=int)}")
    for i, j in sorted({**run1, **run2}.items(), key=lambda x: int(x[0])):
        print(f"  job {i:>4} {kind(j):<18} {j.get('JobState'):<10} partition={j.get('Partition')} "
              f"gpu={'yes' if has_gpu(j) else 'no'} cpus={j.get('NumCPUs')} mem={mem_mb(j)}M")

    # ---- run 1: a scene that cannot be prepared -------------------------------------------
    check("run 1 (with the broken scene) exits non-zero", rc1 != 0, f"rc={rc1}")
    check("run 1 reports the failed group twice (first attempt and retry)",
          log1.count("Error in group prepare_simulate") == 2 and "Trying to restart job" in log1)
    prep = [j for j in run1.values() if kind(j) == "prepare_simulate"]
    failed = sorted((j for j in prep if j["JobState"] == "FAILED"), key=lambda j: int(j["JobId"]))
    done = [j for j in prep if j["JobState"] == "COMPLETED"]
    check("run 1: 3 scene groups COMPLETED and the broken one FAILED twice in SLURM",
          len(done) == 3 and len(failed) == 2, f"{len(done)} completed, {len(failed)} failed")
    check("the FAILED SLURM jobs are the broken scene's, per their logs",
          all("prepare synthetic broken" in log_text(j) for j in failed)
          and not any("prepare synthetic broken" in log_text(j) for j in done))
    if len(failed) == 2:
        check("the retry asked SLURM for twice the memory", mem_mb(failed[1]) == 2 * mem_mb(failed[0]),
              f"{mem_mb(failed[0])}M then {mem_mb(failed[1])}M")
    check("scene groups ran on the CPU partition without a GPU",
          all(j["Partition"] == "cpu" and not has_gpu(j) for j in prep))
    train = [j for j in run1.values() if kind(j) == "train"]
    check("the GPU method's train job ran alone, on the GPU partition, with a GPU",
          len(train) == 1 and train[0]["JobState"] == "COMPLETED"
          and train[0]["Partition"] == "gpu" and has_gpu(train[0]))
    made = (work / "files_run1.txt").read_text().split()
    check("run 1 made nothing downstream of the broken scene, and no tables",
          not any("/broken/" in p or p.endswith("/broken.json") for p in made if "/logs/" not in p)
          and "results/tables/summary.csv" not in made)

    # ---- run 2: the resume ------------------------------------------------------------------
    check("run 2 (resume without the broken scene) exits 0", rc2 == 0, f"rc={rc2}")
    check("run 2 resubmits nothing that run 1 finished",
          not any(kind(j) in ("prepare_simulate", "train") for j in run2.values()))
    gpu_groups = [j for j in run2.values() if kind(j) == "fuse_evaluate_gpu"]
    cpu_groups = sorted((j for j in run2.values() if kind(j) == "fuse_evaluate_cpu"),
                        key=lambda j: int(j["JobId"]))
    check("GPU fuse+evaluate groups: COMPLETED on the GPU partition, each with a GPU",
          bool(gpu_groups) and all(j["JobState"] == "COMPLETED" and j["Partition"] == "gpu"
                                   and has_gpu(j) for j in gpu_groups))
    check("CPU fuse+evaluate groups: on the CPU partition, none with a GPU",
          bool(cpu_groups) and all(j["Partition"] == "cpu" and not has_gpu(j) for j in cpu_groups))
    check("one SLURM job per entry x dataset x degradation (both scenes' fuse + evaluate)",
          len(gpu_groups) == 2 and len([j for j in cpu_groups if j["JobState"] == "COMPLETED"]) == 3)
    oom = (work / "oom_probe.log").read_text().split("\n") if (work / "oom_probe.log").exists() else []
    killed = {ln.split()[0] for ln in oom if ln.endswith(" killed")}
    ran = {ln.split()[0] for ln in oom if ln.endswith(" ran")}
    failed_cpu = [j for j in cpu_groups if j["JobState"] == "FAILED"]
    retry = [j for j in cpu_groups if j["JobId"] in ran and j["JobState"] == "COMPLETED"]
    check("only the OOM-killed batch FAILED, once; the other CPU batches were not affected",
          len(failed_cpu) == 1 and killed == {failed_cpu[0]["JobId"]}
          and "oom_probe" in log_text(failed_cpu[0]), f"failed {[j['JobId'] for j in failed_cpu]}, "
          f"killed in {killed}")
    if len(failed_cpu) == 1 and len(retry) == 1:
        first, again = failed_cpu[0], retry[0]
        check("its retry COMPLETED, later, with twice the memory",
              again["JobState"] == "COMPLETED" and int(again["JobId"]) > int(first["JobId"])
              and mem_mb(again) == 2 * mem_mb(first), f"{mem_mb(first)}M then {mem_mb(again)}M")
    else:
        check("the OOM-killed batch was retried once", False, f"ran in {ran}")

    # ---- `hmifbench plan`, run between the two runs, predicted run 2 -----------------------
    plan_file = work / "plan_run2.json"
    plan = json.loads(plan_file.read_text()) if plan_file.is_file() else {}
    first_attempts = {}
    for j in run2.values():  # each FAILED batch was resubmitted once: count it once
        if j["JobState"] != "FAILED":
            first_attempts[kind(j)] = first_attempts.get(kind(j), 0) + 1
    check("hmifbench plan predicted run 2's SLURM jobs (retries aside) and found no misfits",
          plan.get("slurm_jobs_by_kind") == first_attempts and plan.get("misfits") == []
          and plan.get("limits_checked") is True,
          f"plan {plan.get('slurm_jobs_by_kind')}, ran {first_attempts}, misfits {plan.get('misfits')}")

    squeue = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%T"], capture_output=True, text=True)
    seen = dict(ln.split("|") for ln in squeue.stdout.split() if "|" in ln)
    check("squeue (the status command) reports the same final states",
          all(seen.get(i) == j["JobState"] for i, j in run2.items()),
          str({i: (seen.get(i), j["JobState"]) for i, j in run2.items()}))

    # ---- every rule job ran inside a SLURM job -----------------------------------------------
    completed_logs = "\n".join(log_text(j) for j in {**run1, **run2}.values()
                               if j["JobState"] == "COMPLETED")
    check("every SLURM job left its log in .snakemake/slurm_logs",
          all(Path(j.get("StdOut", "")).is_file()
              and str(work / ".snakemake" / "slurm_logs") in j["StdOut"] for j in {**run1, **run2}.values()))
    expected = [f"results/scenes/synthetic/{s}.hdr" for s in SCENES + ["scene03"]]
    expected += [f"results/pairs/{PAIR}/{s}/truth.json" for s in SCENES + ["scene03"]]
    expected += [f"results/models/gpu_trained_probe/{PAIR}/state.json"]
    expected += [f"results/fused/{e}/{PAIR}/{s}/run.json" for e in ENTRIES for s in SCENES]
    expected += [f"results/scores/{e}/{PAIR}/{s}.json" for e in ENTRIES for s in SCENES]
    expected += [f"results/scores/{e}/{PAIR}.batch" for e in ENTRIES]
    missing = [p for p in expected if p not in completed_logs or not (work / p).exists()]
    check(f"all {len(expected)} rule jobs ran inside COMPLETED SLURM jobs (their logs name them)",
          not missing, f"missing: {missing[:5]}")
    for local in ("localrule report_tables", "localrule all"):
        check(f"{local} ran on the submit host", local in log2 and local not in completed_logs)

    # ---- what the methods saw inside their jobs ------------------------------------------------
    gpu_ids = {j["JobId"] for j in gpu_groups}
    for entry in ENTRIES:
        for scene in SCENES:
            run = json.loads((work / f"results/fused/{entry}/{PAIR}/{scene}/run.json").read_text())
            if not check(f"{entry}/{scene}: status ok", run.get("status") == "ok", run.get("error")):
                continue
            visible = run["provenance"].get("cuda_visible_devices")
            check(f"{entry}/{scene}: provenance shows CUDA_VISIBLE_DEVICES="
                  f"{'0' if entry in GPU_ENTRIES else 'unset'}",
                  visible == ("0" if entry in GPU_ENTRIES else None), repr(visible))
            env = (run.get("extras") or {}).get("env")
            if env is None:
                continue  # upsample/gsa keep no job environment beyond their provenance
            if entry in GPU_ENTRIES:
                check(f"{entry}/{scene}: ran in the GPU group with CUDA_VISIBLE_DEVICES=0",
                      env["CUDA_VISIBLE_DEVICES"] == "0" and env["SLURM_JOB_PARTITION"] == "gpu"
                      and env["SLURM_JOB_ID"] in gpu_ids, json.dumps(env))
                check(f"{entry}/{scene}: fell back to the CPU (fake GPU, allow_cpu_fallback)",
                      run["extras"]["device"] == "cpu" and run["provenance"].get("device") == "cpu")
            else:
                check(f"{entry}/{scene}: ran in a CPU group with no GPU visible",
                      env["CUDA_VISIBLE_DEVICES"] is None and env["SLURM_JOB_PARTITION"] == "cpu",
                      json.dumps(env))
    state = json.loads((work / f"results/models/gpu_trained_probe/{PAIR}/state.json").read_text())
    env = state["state"]["env"]
    check("the train job saw CUDA_VISIBLE_DEVICES=0 in its GPU job",
          env["CUDA_VISIBLE_DEVICES"] == "0" and train and env["SLURM_JOB_ID"] == train[0]["JobId"],
          json.dumps(env))

    with open(work / "results" / "tables" / "per_scene.csv") as f:
        rows = list(csv.DictReader(f))
    got = {(r["entry"], r["scene"], r["status"]) for r in rows}
    want = {(e, s, "ok") for e in ENTRIES for s in SCENES}
    check("the tables list every entry × scene, all ok", got == want, str(sorted(got)))

    print(f"cluster: {len(passes)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve()))
