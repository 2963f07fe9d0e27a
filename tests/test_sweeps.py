"""Robustness sweeps: expansion (names, values, order, determinism), validation, the nominal setting."""

import copy
import json
import subprocess
import sys

import numpy as np
import pytest

from hmifbench.config import validate_config
from hmifbench.cube import Cube
from hmifbench.datasets import PROTOCOLS
from hmifbench.datasets.sweeps import expand_sweep, expand_sweeps
from hmifbench.errors import ConfigError
from hmifbench.io import read_json, write_cube
from hmifbench.method import FusionProblem
from hmifbench.stages import fuse, simulate

PSF_SWEEP = {"base": "gauss-fwhm-x4", "field": "psf.sigma", "values": [2.5, 1.2, 1.7]}


def test_names_values_and_order_follow_the_config():
    points = expand_sweep("psf-err", PSF_SWEEP)
    assert [p.protocol.name for p in points] == ["psf-err_psf.sigma-2.5", "psf-err_psf.sigma-1.2",
                                                 "psf-err_psf.sigma-1.7"]
    assert [p.protocol.psf["sigma"] for p in points] == [2.5, 1.2, 1.7]
    base = PROTOCOLS["gauss-fwhm-x4"]
    for p in points:
        # only the swept field differs from the base
        assert p.nominal is base
        assert p.protocol.psf["size"] == base.psf["size"] and p.protocol.scale == base.scale
        assert p.protocol.srf == base.srf and p.protocol.snr_hsi_db == base.snr_hsi_db


def test_expansion_is_deterministic_and_leaves_the_registry_alone():
    before = dict(PROTOCOLS)
    sweeps = {"psf-err": PSF_SWEEP, "snr": {"base": "gauss-fwhm-x4", "field": "snr_hsi_db", "values": [20, 30]}}
    first, second = expand_sweeps(sweeps), expand_sweeps(copy.deepcopy(sweeps))
    assert list(first) == list(second) == [
        "psf-err_psf.sigma-2.5", "psf-err_psf.sigma-1.2", "psf-err_psf.sigma-1.7",
        "snr_snr_hsi_db-20", "snr_snr_hsi_db-30"]
    assert [p.protocol for p in first.values()] == [p.protocol for p in second.values()]
    assert PROTOCOLS == before


def test_nested_list_and_integer_fields():
    shift = expand_sweep("mis", {"base": "gauss-fwhm-x4", "field": "misregistration.shift_lr",
                                 "values": [[0, 0.5], [1, 1]]})
    assert [p.protocol.name for p in shift] == ["mis_misregistration.shift_lr-0x0.5",
                                                "mis_misregistration.shift_lr-1x1"]
    assert shift[0].protocol.misregistration == {"shift_lr": [0, 0.5]}
    size = expand_sweep("k", {"base": "gauss-fwhm-x4", "field": "psf.size", "values": [5.0, 9]})
    assert [p.protocol.psf["size"] for p in size] == [5, 9]
    assert all(type(p.protocol.psf["size"]) is int for p in size)


@pytest.mark.parametrize("spec, key, words", [
    ({"base": "no-such", "field": "psf.sigma", "values": [1]}, "sweeps.s.base", "unknown protocol 'no-such'"),
    ({"base": "gauss-fwhm-x4", "field": "colour", "values": [1]}, "sweeps.s.field", "unknown protocol field"),
    ({"base": "gauss-fwhm-x4", "field": "psf.radius", "values": [1]}, "sweeps.s.field", "psf.radius"),
    ({"base": "gauss-fwhm-x4", "field": "name", "values": ["x"]}, "sweeps.s.field", "unknown protocol field"),
    ({"base": "gauss-fwhm-x4", "field": "psf.sigma", "values": [1, "wide"]}, "sweeps.s.values[1]",
     "must be a finite number"),
    ({"base": "gauss-fwhm-x4", "field": "psf.sigma", "values": [0.5, -1]}, "sweeps.s.values[1]", "sigma"),
    ({"base": "gauss-fwhm-x4", "field": "psf.sigma", "values": [1, 1.0]}, "sweeps.s.values[1]", "repeats values[0]"),
    ({"base": "gauss-fwhm-x4", "field": "scale", "values": [2.5]}, "sweeps.s.values[0]", "integer"),
    ({"base": "gauss-fwhm-x4", "field": "srf", "values": ["nikon-x"]}, "sweeps.s.values[0]", "unknown SRF table"),
    ({"base": "gauss-fwhm-x4", "field": "snr_hsi_db", "values": [None]}, "sweeps.s.values[0]", "finite number"),
    ({"base": "gauss-fwhm-x4", "field": "misregistration.shift_lr", "values": [[1]]}, "sweeps.s.values[0]",
     "shift_lr"),
    ({"base": "gauss-fwhm-x4", "field": "psf.sigma", "values": []}, "sweeps.s.values", "at least one"),
])
def test_validation_names_the_bad_key(spec, key, words):
    with pytest.raises(ConfigError) as err:
        expand_sweep("s", spec)
    assert f"config key {key}:" in str(err.value) and words in str(err.value)


def _config(**extra):
    return {"datasets": {"synthetic": {"scenes": ["scene01"], "options": {"size": 32}}},
            "degradations": ["gauss-fwhm-x4"], "methods": {"upsample": {}}, **extra}


def test_config_adds_the_sweep_protocols_to_degradations_once():
    config = validate_config(_config(sweeps={"psf-err": PSF_SWEEP}))
    assert config["degradations"] == ["gauss-fwhm-x4", "psf-err_psf.sigma-2.5", "psf-err_psf.sigma-1.2",
                                      "psf-err_psf.sigma-1.7"]
    assert validate_config(config)["degradations"] == config["degradations"]  # idempotent


def test_config_rejects_a_bad_sweep_by_key():
    with pytest.raises(ConfigError, match=r"sweeps\.psf-err\.field: unknown protocol field 'psf\.fwhm'"):
        validate_config(_config(sweeps={"psf-err": {**PSF_SWEEP, "field": "psf.fwhm"}}))
    with pytest.raises(ConfigError, match=r"sweeps\.psf-err\.valeus: unknown key"):
        validate_config(_config(sweeps={"psf-err": {**PSF_SWEEP, "valeus": [1]}}))
    with pytest.raises(ConfigError, match=r"sweeps"):
        validate_config(_config(sweeps={"psf_err": PSF_SWEEP}))  # '_' would make names ambiguous


def test_protocols_cli_prints_the_expansion(tmp_path):
    (tmp_path / "c.yaml").write_text(json.dumps(_config(sweeps={"psf-err": PSF_SWEEP})))
    out = subprocess.run([sys.executable, "-m", "hmifbench.cli", "protocols", "--config",
                          str(tmp_path / "c.yaml"), "--sweep", "psf-err"],
                         capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [
        "psf-err_psf.sigma-2.5", "psf-err_psf.sigma-1.2", "psf-err_psf.sigma-1.7"]
    assert all(line.endswith("nominal=gauss-fwhm-x4") for line in lines)


@pytest.fixture
def swept_pair(tmp_path):
    rng = np.random.default_rng(0)
    x = np.clip(rng.random((32, 32, 1)) * np.linspace(0.2, 0.8, 31), 0, 1).astype(np.float32)
    scene = write_cube(tmp_path / "scene.hdr", Cube(x, np.arange(400, 710, 10.0)))
    sweeps = {"psf-err": PSF_SWEEP}
    simulate(scene, "psf-err_psf.sigma-2.5", tmp_path / "pair", sweeps=sweeps)
    return tmp_path / "pair"


def test_nominal_setting_gives_the_base_psf_while_the_pair_used_the_swept_one(swept_pair, tmp_path):
    truth = read_json(swept_pair / "truth.json")
    base = PROTOCOLS["gauss-fwhm-x4"]
    swept = expand_sweep("psf-err", PSF_SWEEP)[0].protocol
    assert np.allclose(truth["psf"], swept.kernel()) and np.allclose(truth["nominal"]["psf"], base.kernel())
    assert not np.allclose(truth["psf"], truth["nominal"]["psf"])
    assert truth["nominal"]["protocol"] == "gauss-fwhm-x4" and truth["nominal"]["value"] == 2.5

    record = fuse("fuse", swept_pair, tmp_path / "run", setting="nominal")
    run = read_json(tmp_path / "run" / "run.json")
    assert record["status"] == "ok" and run["setting"] == "nominal"
    given, true = run["degradation"]["given"], run["degradation"]["true"]
    assert given["protocol"] == "gauss-fwhm-x4" and true["protocol"] == "psf-err_psf.sigma-2.5"
    assert np.allclose(given["psf"], base.kernel()) and np.allclose(true["psf"], swept.kernel())
    assert np.allclose(given["srf"], true["srf"])  # only the PSF was swept

    fuse("fuse", swept_pair, tmp_path / "known", setting="known")
    known = read_json(tmp_path / "known" / "run.json")["degradation"]
    assert known["given"]["protocol"] == "psf-err_psf.sigma-2.5"
    assert np.allclose(known["given"]["psf"], swept.kernel())
    fuse("fuse", swept_pair, tmp_path / "blind", setting="blind")
    blind = read_json(tmp_path / "blind" / "run.json")["degradation"]["given"]
    assert blind == {"protocol": None, "psf": None, "srf": None}


def test_nominal_is_the_truth_for_a_named_protocol_and_needs_the_record():
    lr, msi = np.zeros((4, 4, 5), np.float32), np.zeros((16, 16, 3), np.float32)
    truth = {"scale": 4, "psf": [[1.0]], "srf": np.ones((3, 5)).tolist(),
             "nominal": {"protocol": "p", "psf": [[0.5, 0.5]], "srf": np.full((3, 5), 0.2).tolist()}}
    assert np.allclose(FusionProblem.from_truth(lr, msi, truth, "nominal").psf, [[0.5, 0.5]])
    with pytest.raises(Exception, match="no 'nominal'"):
        FusionProblem.from_truth(lr, msi, {k: v for k, v in truth.items() if k != "nominal"}, "nominal")


# --------------------------------------------------------------- SRF shift, methods, dataset lists

def test_srf_shift_moves_every_curve_along_the_wavelengths():
    from hmifbench.datasets.srf import srf_for
    from hmifbench.errors import InputError

    wl = np.arange(400, 710, 10.0)
    plain, _ = srf_for("nikon-d700", wl)
    # a 10 nm shift on the table's own 10 nm grid is one HSI band: rows move one column right
    moved, covered = srf_for("nikon-d700", wl, 10.0)
    assert np.allclose(moved[:, 1:] / moved[:, 1:].sum(axis=1, keepdims=True),
                       plain[:, :-1] / plain[:, :-1].sum(axis=1, keepdims=True))
    assert np.isclose(moved[:, 0], 0).all() and (covered <= 1).all()
    centre = lambda r: (r * wl).sum(axis=1) / r.sum(axis=1)  # noqa: E731
    assert np.all(centre(srf_for("nikon-d700", wl, -5.0)[0]) < centre(plain))
    with pytest.raises(InputError, match="finite"):
        srf_for("nikon-d700", wl, float("nan"))


def test_srf_shift_sweep_makes_pairs_with_the_shifted_srf_and_a_nominal_base(tmp_path):
    spec = {"base": "gauss-fwhm-x4", "field": "srf_shift_nm", "values": [-5, 5]}
    points = expand_sweep("srf", spec)
    assert [p.protocol.name for p in points] == ["srf_srf_shift_nm--5", "srf_srf_shift_nm-5"]
    x = np.random.default_rng(0).random((16, 16, 31)).astype(np.float32)
    scene = write_cube(tmp_path / "scene.hdr", Cube(x, np.arange(400, 710, 10.0)))
    simulate(scene, "srf_srf_shift_nm-5", tmp_path / "pair", sweeps={"srf": spec})
    truth = read_json(tmp_path / "pair" / "truth.json")
    assert truth["protocol"]["srf_shift_nm"] == 5
    assert not np.allclose(truth["srf"], truth["nominal"]["srf"])   # told the data-sheet table
    assert np.allclose(truth["psf"], truth["nominal"]["psf"])
    with pytest.raises(ConfigError, match=r"sweeps\.s\.values\[0\].*finite number"):
        expand_sweep("s", {**spec, "values": ["far"]})


def test_a_sweep_can_name_the_entries_that_run_it():
    from hmifbench.config import sweep_entries

    config = validate_config({**_config(sweeps={"psf-err": {**PSF_SWEEP, "methods": ["gsa"]}}),
                              "methods": {"upsample": {}, "gsa": {}}})
    assert sweep_entries(config, "psf-err_psf.sigma-2.5") == ["gsa"]
    assert sweep_entries(config, "gauss-fwhm-x4") == ["upsample", "gsa"]
    with pytest.raises(ConfigError, match=r"sweeps\.psf-err\.methods: unknown method entry 'fsue'"):
        validate_config(_config(sweeps={"psf-err": {**PSF_SWEEP, "methods": ["fsue"]}}))


def test_a_dataset_list_gets_the_sweeps_of_the_protocols_it_lists():
    snr = {"base": "gauss-fwhm-x8", "field": "snr_hsi_db", "values": [30]}

    def own_list(listed):
        config = _config(sweeps={"psf-err": PSF_SWEEP, "snr": snr})
        config["datasets"]["synthetic"]["degradations"] = listed
        config = validate_config(config)
        assert "snr_snr_hsi_db-30" in config["degradations"]   # the global list gets every sweep
        return config["datasets"]["synthetic"]["degradations"]

    # a dataset runs the sweeps whose base it lists, and no other
    assert own_list(["gauss-fwhm-x8"]) == ["gauss-fwhm-x8", "snr_snr_hsi_db-30"]
    assert own_list(["gauss-fwhm-x4", "aniso"]) == [
        "gauss-fwhm-x4", "aniso", "psf-err_psf.sigma-2.5", "psf-err_psf.sigma-1.2", "psf-err_psf.sigma-1.7"]
    assert own_list(["aniso"]) == ["aniso"]
    # naming a sweep's protocol in a dataset's own list is allowed (and not repeated)
    listed = own_list(["gauss-fwhm-x4", "psf-err_psf.sigma-1.2"])
    assert listed.count("psf-err_psf.sigma-1.2") == 1 and len(listed) == 4
