"""What the slurm profile makes Snakemake submit, from a dry run (no cluster needed).

tests/cluster/count_jobs.py records every job a dry run hands to the executor and computes its
SLURM request as the executor does. The real submission is tested by run_cluster_test.sh.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.integration

HERE = REPO / "tests" / "cluster"
GPU_ENTRIES = ("gpu_probe", "gpu_trained_probe")


def test_the_users_command_finds_the_profiles_from_the_repository_root(monkeypatch):
    from snakemake.cli import get_profile_dir

    # `snakemake --cores 8 --profile slurm`: a bare name is looked up in the working
    # directory first (then the user's and the site's Snakemake config folders)
    monkeypatch.chdir(REPO)
    folder, file = get_profile_dir("slurm")
    # the links slurm and local at the root lead to the profiles in profiles/
    assert file.resolve() == REPO / "profiles" / "slurm" / "config.v8+.yaml"
    assert get_profile_dir("local")[1].resolve() == REPO / "profiles" / "local" / "config.v8+.yaml"
    profile = yaml.safe_load(file.read_text())
    assert profile["executor"] == "slurm"
    assert profile["slurm-status-command"] == "squeue"  # sacct hangs without slurmdbd
    assert profile["resources"] == {"gpu": 1}
    # packing comes from the workflow's batches: group-components misbehaves with checkpoints
    assert "group-components" not in profile
    local = yaml.safe_load((REPO / "profiles" / "local" / "config.v8+.yaml").read_text())
    assert local["resources"]["gpu"] >= 1


@pytest.fixture(scope="module")
def submitted(tmp_path_factory):
    config = tmp_path_factory.mktemp("dry") / "config.yaml"
    config.write_text(textwrap.dedent(f"""
        plugins: [{HERE / 'plugins'}]
        allow_cpu_fallback: true
        datasets:
          synthetic:
            scenes: [scene01, scene02]
            train_scenes: [scene03]
            options: {{size: 32}}
        degradations: [gauss-fwhm-x4]
        methods:
          upsample: {{}}
          gsa: {{}}
          gpu_probe: {{}}
          gpu_trained_probe: {{}}
    """))
    site = config.with_name("site.yaml")
    site.write_text("account: acct1\nqos: normal\npartitions:\n  cpu: {name: short}\n"
                    "  gpu: {name: gpu-a, gpu_model: a100, qos: gpuq}\n")
    # the profile by its bare name, from the repository root, as users type it
    out = subprocess.run([sys.executable, str(HERE / "count_jobs.py"), "--configfile", str(config),
                          "--cores", "8", "--profile", "slurm", "--json"],
                         capture_output=True, text=True, timeout=300, cwd=REPO,
                         env={**os.environ, "HMIFBENCH_SITE": str(site)})
    assert out.returncode == 0, out.stderr[-3000:]
    records, end = json.JSONDecoder().raw_decode(out.stdout)
    return records


def test_one_cluster_job_per_entry_dataset_degradation(submitted):
    kinds = sorted(r["group"] or next(iter(r["rules"])) for r in submitted)
    # 3 scenes (2 test, 1 train) with their pairs; the train job; one batch per entry
    assert kinds == ["fuse_evaluate_cpu"] * 2 + ["fuse_evaluate_gpu"] * 2 + [
        "prepare_simulate"] * 3 + ["train_gpu_trained_probe"]
    batches = sorted(json.dumps(r["rules"], sort_keys=True) for r in submitted
                     if (r["group"] or "").startswith("fuse_evaluate"))
    assert batches == sorted(json.dumps({f"fuse_{e}": 2, "evaluate": 2, "score_batch": 1},
                                        sort_keys=True)
                             for e in ("gpu_probe", "gpu_trained_probe", "gsa", "upsample"))


def test_only_gpu_methods_request_a_gpu_and_never_more_than_one(submitted):
    for r in submitted:
        gpu_rules = [rule for rule in r["rules"] if rule.endswith(GPU_ENTRIES)]
        wants = r["resources"].get("gpu", 0)
        assert wants == (1 if gpu_rules else 0), r
        if r["group"] == "fuse_evaluate_gpu":
            # two GPU jobs in one group: one after another on one GPU, runtimes add up
            assert r["resources"]["runtime"] >= 2 * 5


def test_cpu_group_runs_its_scenes_side_by_side(submitted):
    for r in submitted:
        if r["group"] == "fuse_evaluate_cpu":
            assert r["resources"]["_cores"] == 2  # its 2 one-thread fuse jobs at once


def test_site_file_sets_account_partition_qos_and_gpu_type_per_job(submitted):
    for r in submitted:
        res = {k: r["resources"].get(k) for k in ("slurm_account", "slurm_partition", "qos", "gpu_model")}
        if r["resources"].get("gpu"):
            assert res == {"slurm_account": "acct1", "slurm_partition": "gpu-a", "qos": "gpuq",
                           "gpu_model": "a100"}, r
        else:
            assert res == {"slurm_account": "acct1", "slurm_partition": "short", "qos": "normal",
                           "gpu_model": None}, r
