"""DAEM through the Snakemake workflow with tiny budgets: a train job on the train split, then
fuse jobs that adapt the trained model per scene, scored into the usual tables."""

import json
import textwrap

import pandas as pd
import pytest

from tests.test_workflow import snakemake

pytestmark = pytest.mark.integration
pytest.importorskip("torch")

CONFIG = textwrap.dedent('''
    seed: 0
    allow_cpu_fallback: true
    datasets:
      synthetic:
        scenes: [scene01, scene02]
        train_scenes: [scene05]
        options: {size: 32}
    degradations: [gauss-fwhm-x4]
    methods:
      upsample: {}
      daem:
        params: {iterations: 30, adapt_iterations: 10}
        resources: {gpu: 0, threads: 1}
''')


def test_daem_trains_once_and_fuses_every_scene(tmp_path):
    (tmp_path / "config.yaml").write_text(CONFIG)
    result = snakemake(tmp_path, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    per_scene = pd.read_csv(tmp_path / "results" / "tables" / "per_scene.csv")
    daem = per_scene[per_scene["entry"] == "daem"]
    assert len(daem) == 2 and (daem["status"] == "ok").all()
    runs = sorted(tmp_path.glob("results/**/daem/**/run.json"))
    assert len(runs) == 2
    record = json.loads(runs[0].read_text())
    assert record["n_params"] == 6530 and record["iterations"] == 10
    assert record["extras"]["train_iterations"] == 30
    assert record["extras"]["convergence"]["iteration"][-1] == 10
    states = sorted(tmp_path.glob("**/daem/**/state.json"))
    assert len(states) == 1  # one train job shared by both scenes
