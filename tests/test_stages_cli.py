"""Every stage by hand through the CLI, on files the project makes; failures are recorded."""

import json

import numpy as np
import pytest

from hmifbench import read_cube
from hmifbench.cli import main
from hmifbench.io import read_json


@pytest.fixture(scope="module")
def pair_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("stages")
    assert main(["prepare", "synthetic", "scene01", "-o", str(root / "scene01.hdr"),
                 "--option", "size=32"]) == 0
    assert main(["simulate", str(root / "scene01.hdr"), "gauss-fwhm-x4", "-o", str(root / "pair"),
                 "--scene-id", "synthetic/scene01"]) == 0
    return root


def test_simulated_pair_has_cubes_and_truth(pair_dir):
    truth = read_json(pair_dir / "pair" / "truth.json")
    assert truth["scale"] == 4 and truth["offset"] == 1 and truth["srf_name"] == "nikon-d700"
    assert np.asarray(truth["psf"]).sum() == pytest.approx(1.0)
    assert read_cube(pair_dir / "pair" / "lr_hsi.hdr").shape == (8, 8, 31)
    assert read_cube(pair_dir / "pair" / "hr_msi.hdr").shape == (32, 32, 3)


def test_simulation_is_reproducible(pair_dir, tmp_path):
    main(["simulate", str(pair_dir / "scene01.hdr"), "noisy-35-40", "-o", str(tmp_path / "a"),
          "--scene-id", "x"])
    main(["simulate", str(pair_dir / "scene01.hdr"), "noisy-35-40", "-o", str(tmp_path / "b"),
          "--scene-id", "x"])
    np.testing.assert_array_equal(read_cube(tmp_path / "a" / "lr_hsi.hdr").data,
                                  read_cube(tmp_path / "b" / "lr_hsi.hdr").data)


def test_fuse_evaluate_report_by_hand(pair_dir, tmp_path, capsys):
    out = tmp_path / "gsa"
    assert main(["fuse", "gsa", str(pair_dir / "pair"), "-o", str(out), "--seed", "3"]) == 0
    run = read_json(out / "run.json")
    assert run["status"] == "ok" and run["timing"]["fuse_s"] > 0
    assert run["provenance"]["seed"] == 3 and run["provenance"]["packages"]["numpy"]
    assert main(["evaluate", str(out / "run.json"), "--reference", str(pair_dir / "scene01.hdr"),
                 "--pair", str(pair_dir / "pair"), "-o", str(tmp_path / "s.json"),
                 "--label", "dataset=synthetic", "--label", "degradation=gauss-fwhm-x4",
                 "--label", "scene=scene01"]) == 0
    scores = read_json(tmp_path / "s.json")
    assert scores["profile"] == "canonical" and scores["scores"]["psnr"] > 25
    assert main(["report", str(tmp_path / "s.json"), "-o", str(tmp_path / "tables")]) == 0
    assert "gsa" in (tmp_path / "tables" / "summary.md").read_text()


def test_failed_method_is_recorded_not_lost(pair_dir, tmp_path, capsys):
    out = tmp_path / "bad"
    rc = main(["fuse", "gsa", str(pair_dir / "pair"), "-o", str(out), "--params",
               json.dumps({"ridge": -1}), "--on-error", "record"])
    assert rc == 0
    run = read_json(out / "run.json")
    assert run["status"] == "failed" and "ridge" in run["error"]
    assert not (out / "hr_hsi.hdr").exists()
    main(["evaluate", str(out / "run.json"), "--reference", str(pair_dir / "scene01.hdr"),
          "--pair", str(pair_dir / "pair"), "-o", str(tmp_path / "bad.json")])
    assert read_json(tmp_path / "bad.json")["status"] == "failed"


def test_errors_are_one_line_messages(pair_dir, tmp_path, capsys):
    assert main(["fuse", "nosuch", str(pair_dir / "pair"), "-o", str(tmp_path / "x")]) == 2
    assert "error: no method named 'nosuch'" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "missing.hdr"), "gauss-fwhm-x4", "-o", str(tmp_path)]) == 2
    assert "missing.hdr: cube header not found" in capsys.readouterr().err
    assert main(["prepare", "synthetic", "scene01", "-o", str(tmp_path / "p.hdr"),
                 "--option", "size=4"]) == 2
