"""What profiles/slurm makes Snakemake submit, from a dry run (no cluster needed).

tests/cluster/count_jobs.py records every job a dry run hands to the executor and computes its
SLURM request as the executor does. The real submission is tested by run_cluster_test.sh.
"""

import json
import subprocess
import sys
import textwrap

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.integration

HERE = REPO / "tests" / "cluster"
GPU_ENTRIES = ("gpu_probe", "gpu_trained_probe")


def test_profile_is_found_by_path_and_sets_what_a_cluster_needs(monkeypatch):
    from snakemake.cli import get_profile_dir

    monkeypatch.chdir(REPO)
    folder, file = get_profile_dir("profiles/slurm")
    assert file.name == "config.v8+.yaml"
    # A bare name is looked up in ./ and the user's/site's config folders, not ./profiles:
    # hence `--profile profiles/slurm` in the README.
    assert get_profile_dir("slurm") is None
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
    out = subprocess.run([sys.executable, str(HERE / "count_jobs.py"), "--configfile", str(config),
                          "--cores", "8", "--json"], capture_output=True, text=True, timeout=300)
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
