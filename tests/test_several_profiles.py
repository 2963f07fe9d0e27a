"""Scoring one fused image under several metric profiles, and the tables that show them."""

import json

import pandas as pd
import pytest

from hmifbench import metrics
from hmifbench.cli import main
from hmifbench.io import read_cube, read_json


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("profiles")
    assert main(["prepare", "synthetic", "scene01", "-o", str(root / "scene01.hdr"), "--option", "size=32"]) == 0
    assert main(["simulate", str(root / "scene01.hdr"), "gauss-fwhm-x4", "-o", str(root / "pair")]) == 0
    assert main(["fuse", "gsa", str(root / "pair"), "-o", str(root / "gsa")]) == 0
    assert main(["fuse", "gsa", str(root / "pair"), "-o", str(root / "bad"), "--entry", "gsa-bad",
                 "--params", json.dumps({"ridge": -1}), "--on-error", "record"]) == 0
    scores = []
    for name in ("gsa", "bad"):
        out = root / f"{name}.json"
        assert main(["evaluate", str(root / name / "run.json"), "--reference", str(root / "scene01.hdr"),
                     "--pair", str(root / "pair"), "-o", str(out), "--profile", "mossfuse",
                     "--profile", "canonical", "--label", "dataset=synthetic",
                     "--label", "degradation=gauss-fwhm-x4", "--label", "scene=scene01"]) == 0
        scores.append(out)
    return root, scores


def test_record_holds_each_profile(runs):
    root, (good, bad) = runs
    rec = read_json(good)
    assert rec["profile"] == "mossfuse" and rec["profiles"] == ["mossfuse", "canonical"]
    assert rec["scores"] == rec["scores_by_profile"]["mossfuse"]
    ref, est = read_cube(root / "scene01.hdr"), read_cube(root / "gsa" / "hr_hsi.hdr")
    assert rec["scores_by_profile"]["canonical"] == pytest.approx(metrics.evaluate(ref, est, 4, profile="canonical"))
    assert set(rec["scores_by_profile"]["canonical"]) == set(metrics.profile_keys("canonical"))
    assert read_json(bad)["status"] == "failed" and read_json(bad)["profiles"] == ["mossfuse", "canonical"]


def test_tables_per_profile_count_failures_in_each(runs, tmp_path):
    """The primary profile's tables in the output folder, each further profile's in
    profile-<name>/; a failed run is failed under both."""
    _, scores = runs
    assert main(["report", *map(str, scores), "-o", str(tmp_path)]) == 0
    for folder, profile in ((tmp_path, "mossfuse"), (tmp_path / "profile-canonical", "canonical")):
        per_scene = pd.read_csv(folder / "per_scene.csv")
        assert len(per_scene) == 2 and set(per_scene["profile"]) == {profile}
        summary = pd.read_csv(folder / "summary.csv")
        failed = summary[summary.entry == "gsa-bad"]
        assert len(failed) and (failed["n_failed"] == 1).all()
        assert "profile " + profile in (folder / "summary.md").read_text()
    # cc is a canonical metric only
    assert "cc" in set(pd.read_csv(tmp_path / "profile-canonical" / "summary.csv")["metric"])
    assert "cc" not in set(pd.read_csv(tmp_path / "summary.csv")["metric"])


def test_a_single_profile_keeps_the_old_layout(runs, tmp_path):
    root, _ = runs
    out = tmp_path / "one.json"
    assert main(["evaluate", str(root / "gsa" / "run.json"), "--reference", str(root / "scene01.hdr"),
                 "--pair", str(root / "pair"), "-o", str(out), "--label", "dataset=synthetic",
                 "--label", "degradation=gauss-fwhm-x4", "--label", "scene=scene01"]) == 0
    rec = read_json(out)
    assert rec["profile"] == "canonical" and "scores_by_profile" not in rec and "profiles" not in rec
    assert main(["report", str(out), "-o", str(tmp_path / "t")]) == 0
    assert "— profile" not in (tmp_path / "t" / "summary.md").read_text()
