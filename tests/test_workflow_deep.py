"""The deep methods through the Snakemake workflow, end to end, at tiny budgets.

Every registered deep method except MossFuse (covered by its own tests) runs with its
``quick_params`` on one tiny synthetic scene, on the CPU (``allow_cpu_fallback``), next to
``upsample``; a dataset-trained method also gets its train job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from hmifbench import methods
from tests.conftest import REPO

pytestmark = pytest.mark.integration

DEEP = sorted(n for n in methods.available()
              if n != "mossfuse" and methods.get_class(n).family == "deep")


def snakemake(workdir, *args, timeout=600):
    # ``python -m snakemake`` and this interpreter's bin/ first on PATH (the rules call
    # ``hmifbench``): the environment need not be activated.
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
           str(workdir), "--configfile", str(workdir / "config.yaml"), *args]
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def deep_run(tmp_path_factory):
    if not DEEP:
        pytest.skip("no deep method other than mossfuse is registered")
    work = tmp_path_factory.mktemp("wf_deep")
    entries = {"upsample": {}}
    for name in DEEP:
        entries[name] = {"params": methods.get_class(name).quick_params(),
                         "resources": {"gpu": 0, "threads": 1}}
    config = {"seed": 0, "allow_cpu_fallback": True,
              "datasets": {"synthetic": {"scenes": ["scene01"], "train_scenes": ["scene05"],
                                         "options": {"size": 32}}},
              "degradations": ["gauss-fwhm-x4"], "methods": entries}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(work, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return work


def test_every_deep_method_runs_and_records_its_training(deep_run):
    per_scene = pd.read_csv(deep_run / "results" / "tables" / "per_scene.csv")
    status = per_scene.groupby("entry")["status"].agg(set).to_dict()
    for name in DEEP:
        assert status.get(name) == {"ok"}, (name, status.get(name))
        runs = list((deep_run / "results" / "fused" / name).rglob("run.json"))
        assert len(runs) == 1
        record = json.loads(runs[0].read_text())
        assert record["n_params"] > 0 and record["iterations"] >= 1
        curve = record["extras"]["convergence"]
        assert curve["iteration"][-1] == record["iterations"]
        losses = [v for k, values in curve.items() if k != "iteration" for v in values]
        assert losses and all(v == v for v in losses)  # recorded, and no NaN
