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


# --------------------------------------------------------------------------- issue 12

KILLER_PLUGIN = '''
import ctypes
import os
import signal

import numpy as np

from hmifbench.methods import Method


class Killed(Method):
    """Dies inside fuse: SIGKILL (as the OOM killer does) after taking ~150 MB, or a segfault."""
    name = "killed"
    blind = True
    citation = "test"

    def fuse(self, problem, *, state=None, seed=0, device="auto", progress=None):
        ballast = np.ones(150 * 2**20 // 8)            # touched, so it counts as resident
        if os.environ.get("KILL_WITH") == "SIGSEGV":
            ctypes.string_at(0)
        os.kill(os.getpid(), signal.SIGKILL)
        return ballast
'''


def _cli(*args, env=None):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "hmifbench.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGSEGV"])
def test_method_killed_by_a_signal_is_recorded_as_failed(pair_dir, tmp_path, sig):
    """Case 6: the method's death is a failed run.json (signal, peak memory), which the report lists."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "killed.py").write_text(KILLER_PLUGIN)
    out = tmp_path / "out"
    result = _cli("fuse", "killed", pair_dir / "pair", "-o", out, "--plugins", plugins, "--on-error", "record",
                  env={"KILL_WITH": sig})
    assert result.returncode == 0, result.stderr[-2000:]
    run = read_json(out / "run.json")
    assert run["status"] == "failed"
    assert sig in run["error"] and "killed by signal" in run["error"]
    assert run["timing"]["peak_rss_mb"] > 150
    assert run["provenance"]["packages"]["numpy"]
    assert main(["evaluate", str(out / "run.json"), "--reference", str(pair_dir / "scene01.hdr"),
                 "--pair", str(pair_dir / "pair"), "-o", str(tmp_path / "s.json"),
                 "--label", "dataset=synthetic", "--label", "degradation=x", "--label", "scene=s"]) == 0
    assert main(["report", str(tmp_path / "s.json"), "-o", str(tmp_path / "tables")]) == 0
    assert "| killed | failed |" in (tmp_path / "tables" / "summary.md").read_text()
    if sig != "SIGKILL":
        return
    # While the scheduler has a retry left, the job fails (to be retried with more memory).
    (out / "run.json").unlink()
    result = _cli("fuse", "killed", pair_dir / "pair", "-o", out, "--plugins", plugins, "--on-error", "record",
                  "--retries-left", "1")
    assert result.returncode == 2 and "killed by signal SIGKILL" in result.stderr
    assert not (out / "run.json").exists()
    # By hand (--on-error raise) the command fails, with the record written all the same.
    result = _cli("fuse", "killed", pair_dir / "pair", "-o", out, "--plugins", plugins)
    assert result.returncode == 2 and "killed by signal SIGKILL" in result.stderr
    assert "Traceback" not in result.stderr
    assert read_json(out / "run.json")["status"] == "failed"


def test_fuse_in_a_child_keeps_results_and_records(pair_dir, tmp_path):
    """The isolated run gives the same cube as the method called directly, and a full record."""
    from hmifbench import methods
    from hmifbench.stages import fuse, load_problem

    record = fuse("gsa", pair_dir / "pair", tmp_path / "o", seed=2)
    direct = methods.get("gsa").fuse(load_problem(pair_dir / "pair"), seed=2)
    np.testing.assert_array_equal(read_cube(tmp_path / "o" / "hr_hsi.hdr").data, direct.hr_hsi)
    assert record["timing"]["fuse_s"] > 0 and record["timing"]["peak_rss_mb"] > 10
    assert record["provenance"]["device"] == "cpu"


def test_exception_raised_in_the_method_keeps_its_traceback(pair_dir, tmp_path):
    from hmifbench.stages import fuse

    record = fuse("gsa", pair_dir / "pair", tmp_path / "o", params={"ridge": -1}, on_error="record")
    assert record["status"] == "failed" and "ridge" in record["error"]
    with pytest.raises(Exception, match="ridge"):
        fuse("gsa", pair_dir / "pair", tmp_path / "o2", params={"ridge": -1})


def test_failed_fuse_removes_the_older_cube(pair_dir, tmp_path):
    """Case 7: a failed record never sits beside a cube from an earlier run."""
    out = tmp_path / "o"
    assert main(["fuse", "gsa", str(pair_dir / "pair"), "-o", str(out)]) == 0
    assert (out / "hr_hsi.hdr").exists()
    assert main(["fuse", "gsa", str(pair_dir / "pair"), "-o", str(out), "--params",
                 json.dumps({"ridge": -1}), "--on-error", "record"]) == 0
    assert read_json(out / "run.json")["status"] == "failed"
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]


def test_truth_without_scale_is_a_clear_error(pair_dir, tmp_path, capsys):
    """Case 11: KeyError 'scale' before."""
    import shutil

    pair = tmp_path / "pair"
    shutil.copytree(pair_dir / "pair", pair)
    truth = read_json(pair / "truth.json")
    del truth["scale"]
    (pair / "truth.json").write_text(json.dumps(truth))
    assert main(["fuse", "gsa", str(pair), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "truth.json" in err and "'scale'" in err
    (pair / "truth.json").write_text(json.dumps({**truth, "scale": "four"}))
    assert main(["fuse", "gsa", str(pair), "-o", str(tmp_path / "o")]) == 2
    assert "'scale' must be a positive integer" in capsys.readouterr().err


def test_fuse_out_at_an_existing_file_is_a_clear_error(pair_dir, tmp_path, capsys):
    """Case 11: FileExistsError traceback before."""
    target = tmp_path / "taken"
    target.write_text("x")
    for on_error in ("raise", "record"):
        assert main(["fuse", "gsa", str(pair_dir / "pair"), "-o", str(target), "--on-error", on_error]) == 2
        err = capsys.readouterr().err
        assert "taken" in err and "not a folder" in err
    assert target.read_text() == "x"


def test_report_without_score_files_is_a_clear_error(tmp_path, capsys):
    """Case 11: KeyError 'entry' before."""
    listing = tmp_path / "none.txt"
    listing.write_text("")
    assert main(["report", "--scores-from", str(listing), "-o", str(tmp_path / "t")]) == 2
    assert "no score files" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_report_tables_follow_the_umask(pair_dir, tmp_path):
    """Case 9: tables were 0600 (mkstemp)."""
    import os
    import stat

    assert main(["fuse", "gsa", str(pair_dir / "pair"), "-o", str(tmp_path / "o")]) == 0
    assert main(["evaluate", str(tmp_path / "o" / "run.json"), "--reference", str(pair_dir / "scene01.hdr"),
                 "--pair", str(pair_dir / "pair"), "-o", str(tmp_path / "s.json"),
                 "--label", "dataset=d", "--label", "degradation=g", "--label", "scene=s"]) == 0
    old = os.umask(0o022)
    try:
        assert main(["report", str(tmp_path / "s.json"), "-o", str(tmp_path / "t")]) == 0
    finally:
        os.umask(old)
    for name in ("summary.csv", "summary.md", "per_scene.csv"):
        assert stat.S_IMODE((tmp_path / "t" / name).stat().st_mode) == 0o644
