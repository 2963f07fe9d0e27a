"""Real pairs in the workflow: a Houston-style scene, methods run blind, no-reference scores."""

import json
import textwrap

import pandas as pd
import pytest

from tests.fixtures.formats import make_houston
from tests.test_workflow import snakemake

pytestmark = pytest.mark.integration


def test_real_pairs_are_fused_blind_and_scored_without_reference(tmp_path):
    root = tmp_path / "data" / "ncalm"
    make_houston(root, rows=12, cols=24, scale=4)
    # Files placed by hand stand for a finished download (its rule's output is the manifest).
    (root / "manifest.json").write_text(json.dumps({"files": []}))
    (tmp_path / "config.yaml").write_text(textwrap.dedent('''
        data_root: data
        datasets:
          ncalm:
            scenes: [r0c0, r0c12]
            options: {size: 12}
            degradations: [rs-s2-x4]
            real_pairs: {options: {scale: 4, size: 12}}
        degradations: [gauss-fwhm-x4]
        methods: {upsample: {}, gsa: {}}
    '''))
    result = snakemake(tmp_path, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    per_scene = pd.read_csv(tmp_path / "results" / "tables" / "per_scene.csv")
    real = per_scene[per_scene["degradation"] == "real"]
    assert len(real) == 4 and (real["status"] == "ok").all()
    assert (real["profile"] == "no-reference").all()
    assert real[["d_lambda", "d_s", "qnr"]].notna().all().all()
    assert ((real["qnr"] > 0) & (real["qnr"] <= 1)).all()
    simulated = per_scene[per_scene["degradation"] == "rs-s2-x4"]
    assert len(simulated) == 4 and simulated["psnr"].notna().all()
    run = json.loads((tmp_path / "results" / "fused" / "gsa" / "ncalm" / "real" / "r0c0" / "run.json").read_text())
    assert run["setting"] == "known"  # as configured; the pair has no truth, so it ran blind
