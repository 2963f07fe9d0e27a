"""`hmifbench plan` on a tiny config with fabricated run records: the arithmetic by hand.

One dry run (about 10 s) with the slurm profile; the expected numbers below follow from the
config's declared resources, the fabricated timings and the workflow's fixed runtimes
(prepare 20 min, simulate 10, evaluate 10, score_batch 1); the probe's train job asks for the
`train_runtime` its entry declares (60 min).
"""

import json
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

PLUGINS = REPO / "tests" / "cluster" / "plugins"
KEY = ("synthetic", "gauss-fwhm-x4")


def _write_json(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plan")
    (tmp / "config.yaml").write_text(textwrap.dedent(f"""
        plugins: [{PLUGINS}]
        allow_cpu_fallback: true
        datasets:
          synthetic:
            scenes: [scene01, scene02]
            train_scenes: [scene03]
            options: {{size: 32}}
          harvard: {{}}           # scene lists come from its files, not downloaded here
        degradations: [gauss-fwhm-x4]
        methods:
          upsample: {{resources: {{mem_mb: 1000, threads: 1}}}}
          gsa: {{resources: {{runtime: 90, threads: 2, mem_mb: 9000}}}}
          gpu_trained_probe: {{resources: {{runtime: 6, train_runtime: 60, threads: 1, gpu: 1}}}}
    """))
    (tmp / "site.yaml").write_text(textwrap.dedent("""
        partitions:
          cpu: {name: cpu, max_runtime_min: 600, max_mem_mb: 8000, max_threads: 8}
          gpu: {name: gpu, max_runtime_min: 30, max_mem_mb: 64000, max_threads: 8, max_gpus: 1}
    """))
    earlier = tmp / "earlier" / "results"  # records of an earlier run, elsewhere
    for scene, seconds in (("scene01", 1800), ("scene02", 5400)):
        _write_json(earlier / "fused" / "upsample" / "synthetic" / "gauss-fwhm-x4" / scene / "run.json",
                    {"status": "ok", "timing": {"fuse_s": seconds, "peak_rss_mb": 3000}})
    _write_json(earlier / "fused" / "gsa" / "synthetic" / "gauss-fwhm-x4" / "scene01" / "run.json",
                {"status": "failed", "error": "boom", "timing": None})  # ignored: not a full run
    _write_json(earlier / "models" / "gpu_trained_probe" / "synthetic" / "gauss-fwhm-x4" / "state.json",
                {"timing": {"train_s": 7200, "peak_rss_mb": 100}})
    work = tmp / "work"
    work.mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "hmifbench.cli", "plan", "--configfile", str(tmp / "config.yaml"),
         "--directory", str(work), "--site", str(tmp / "site.yaml"), "--records", str(earlier),
         "--json"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def _row(plan, entry):
    (row,) = [r for r in plan["estimates"] if (r["entry"], r["dataset"], r["degradation"]) == (entry, *KEY)]
    return row


def test_counts_rule_jobs_and_slurm_jobs_after_grouping(plan):
    assert plan["rule_jobs"] == {"evaluate": 6, "fuse_gpu_trained_probe": 2, "fuse_gsa": 2,
                                 "fuse_upsample": 2, "prepare_scene": 3, "score_batch": 3,
                                 "simulate_pair": 3, "train_gpu_trained_probe": 1}
    # 3 scene groups, one batch per entry, the train job
    assert plan["slurm_jobs_by_kind"] == {"fuse_evaluate_cpu": 2, "fuse_evaluate_gpu": 1,
                                          "prepare_simulate": 3, "train_gpu_trained_probe": 1}
    assert plan["slurm_jobs"] == 7 and plan["slurm_jobs_with_gpu"] == 2


def test_measured_timings_are_averaged_and_multiplied_by_threads(plan):
    row = _row(plan, "upsample")  # mean(1800, 5400) s = 1 h per job, 2 jobs, 1 thread
    assert (row["fuse_jobs"], row["fuse_source"]) == (2, "measured")
    assert row["fuse_h_each"] == pytest.approx(1.0)
    assert (row["cpu_h"], row["gpu_h"]) == (pytest.approx(2.0), 0)


def test_declared_runtime_is_the_fallback(plan):
    row = _row(plan, "gsa")  # the failed record is ignored: 90 min x 2 jobs x 2 threads
    assert (row["fuse_source"], row["fuse_h_each"]) == ("declared", pytest.approx(1.5))
    assert (row["cpu_h"], row["gpu_h"]) == (pytest.approx(6.0), 0)


def test_training_time_and_gpu_hours(plan):
    row = _row(plan, "gpu_trained_probe")  # train 7200 s measured; fuse 2 x 6 min declared
    assert (row["train_jobs"], row["train_source"], row["train_h_each"]) == (1, "measured", pytest.approx(2.0))
    assert (row["fuse_source"], row["fuse_h_each"]) == ("declared", pytest.approx(0.1))
    assert row["gpu_h"] == pytest.approx(2.2) and row["cpu_h"] == pytest.approx(2.2)


def test_other_jobs_and_totals(plan):
    # 3 x (20 + 10) prepare+simulate, 6 x 10 evaluate, 3 x 1 score_batch = 153 min
    assert plan["other_jobs"] == {"jobs": 15, "cpu_h": pytest.approx(153 / 60)}
    assert plan["total"]["cpu_h"] == pytest.approx(2.0 + 6.0 + 2.2 + 153 / 60)
    assert plan["total"]["gpu_h"] == pytest.approx(2.2)


def test_jobs_beyond_the_partition_limits_and_runs_that_needed_more_than_requested(plan):
    found = {(m["job"], m["partition"], tuple(m["problems"])) for m in plan["misfits"]}
    # gsa's batch: two 9000 MB fuse jobs side by side; the train job asks 60 min on a 30 min partition
    assert found == {("fuse_evaluate_cpu", "cpu", ("mem_mb 18,000 > 8,000 MB",)),
                     ("train_gpu_trained_probe", "gpu", ("runtime 60 > 30 min",))}
    under = {u["entry"]: u["problems"] for u in plan["under_requested"]}
    # upsample declares 5 min (its class) and 1000 MB (the config); the probe's training took 120 min of 60
    assert under == {"upsample": ["measured peak 3,000 MB > requested 1,000 MB",
                                  "fuse measured 60 min > requested 5 min"],
                     "gpu_trained_probe": ["train measured 120 min > requested 60 min"]}


def test_a_dataset_whose_scenes_are_unknown_until_downloaded_is_named_not_counted(plan):
    # its dry run has only the download (on the submit host) and empty batch listings, which
    # a real run never submits like that: none of them is in the counts above
    assert plan["not_counted"] == ["harvard"]
    assert plan["local_rule_jobs"]["download_harvard"] == 1
    assert not any(r["dataset"] == "harvard" for r in plan["estimates"])
