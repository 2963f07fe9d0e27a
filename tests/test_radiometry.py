"""MSI gains and offsets: the forward model, the problem and protocol records, the estimator,
the methods in the known and blind settings, the run record and its scores."""

import json

import numpy as np
import pytest

from hmifbench.datasets.protocols import PROTOCOLS, degrade, get_protocol
from hmifbench.errors import InputError
from hmifbench.method import FusionProblem
from hmifbench.methods import get
from hmifbench.methods._blind import estimate_degradation, known_or_estimated_degradation
from hmifbench.metrics import psnr, radiometry_error
from hmifbench.observation import apply_radiometry, check_radiometry, remove_radiometry
from tests.synthetic_pairs import simulate

GAINS, OFFSETS = np.array([1.3, 0.8, 1.1]), np.array([0.05, 0.02, 0.0])


def shaded(size=64, scale=4, seed=2):
    """A synthetic pair whose scene is lit unevenly (a smooth shading map in [0.5, 1]).

    The synthetic scenes are mixtures whose abundances sum to one, so a combination of HSI
    bands is constant over them and an MSI offset cannot be told from it; shading, as in every
    real scene, removes that ambiguity."""
    from hmifbench.observation import spatial_degrade, spectral_degrade

    x, problem = simulate(size, scale, seed=seed)
    rows, cols = np.mgrid[:size, :size] / size
    x = (x * (0.75 + 0.25 * np.sin(2 * np.pi * rows + 1.0) * np.cos(np.pi * cols))[..., None])
    x = x.astype(np.float32)
    lr = spatial_degrade(x, problem.psf, scale, problem.offset)
    return x, FusionProblem(lr, spectral_degrade(x, problem.srf), scale, psf=problem.psf,
                            srf=problem.srf)


def with_radiometry(problem, gain=GAINS, offset=OFFSETS, give=False):
    """The same problem with its MSI through ``gain`` and ``offset`` (given to the method
    when ``give``)."""
    import dataclasses

    return dataclasses.replace(problem, hr_msi=apply_radiometry(problem.hr_msi, gain, offset),
                               msi_gain=gain if give else None, msi_offset=offset if give else None)


# ---- the model and its records ----------------------------------------------------------------

def test_apply_and_remove_are_inverse_and_checked():
    rng = np.random.default_rng(0)
    msi = rng.random((8, 8, 3)).astype(np.float32)
    out = apply_radiometry(msi, GAINS, OFFSETS)
    np.testing.assert_allclose(out[..., 0], 1.3 * msi[..., 0] + 0.05, rtol=1e-6)
    np.testing.assert_allclose(remove_radiometry(out, GAINS, OFFSETS), msi, atol=1e-6)
    np.testing.assert_array_equal(check_radiometry(None, None, 3)[0], np.ones(3))
    with pytest.raises(InputError, match="> 0"):
        check_radiometry([1.0, 0.0, 1.0], None, 3)
    with pytest.raises(InputError, match="one per band"):
        check_radiometry([1.0, 1.0], None, 3)


def test_problem_takes_gains_only_in_the_known_setting():
    _, problem = simulate(32, 4)
    truth = {"scale": 4, "psf": problem.psf.tolist(), "srf": problem.srf.tolist(),
             "msi_gain": GAINS.tolist(), "msi_offset": OFFSETS.tolist()}
    known = FusionProblem.from_truth(problem.lr_hsi, problem.hr_msi, truth, "known")
    np.testing.assert_array_equal(known.msi_gain, GAINS)
    np.testing.assert_array_equal(known.msi_offset, OFFSETS)
    blind = FusionProblem.from_truth(problem.lr_hsi, problem.hr_msi, truth, "blind")
    assert blind.msi_gain is None and blind.msi_offset is None
    assert known.blind().msi_gain is None
    with pytest.raises(InputError, match="gains"):
        FusionProblem(problem.lr_hsi, problem.hr_msi, 4, msi_gain=[1.0, 1.0])


def test_protocol_radiometry_is_deterministic_in_range_and_recorded():
    p = PROTOCOLS["gain-offset-x4"]
    gain, offset = p.radiometry(3)
    np.testing.assert_array_equal(gain, p.radiometry(3)[0])
    assert ((gain >= 0.7) & (gain <= 1.3)).all() and ((offset >= 0) & (offset <= 0.05)).all()
    assert PROTOCOLS["gauss-fwhm-x4"].radiometry(3) is None
    np.testing.assert_array_equal(PROTOCOLS["gain-x4"].radiometry(3)[0], gain)
    assert not PROTOCOLS["gain-x4"].radiometry(3)[1].any()
    # A sweep over the spread scales the same draws.
    half = get_protocol({**p.to_dict(), "msi_gain_spread": 0.15}).radiometry(3)[0]
    np.testing.assert_allclose(half - 1.0, (gain - 1.0) / 2)
    x, _ = simulate(32, 4)
    from hmifbench.cube import Cube

    cube = Cube(x, np.linspace(400, 700, x.shape[2]))
    plain, radio = degrade(cube, "gauss-fwhm-x4"), degrade(cube, p)
    assert radio.truth["msi_gain"] == gain.tolist() and "msi_gain" not in plain.truth
    np.testing.assert_allclose(radio.hr_msi.data, apply_radiometry(plain.hr_msi.data, gain, offset),
                               atol=1e-6)
    np.testing.assert_array_equal(radio.lr_hsi.data, plain.lr_hsi.data)


def test_radiometry_error():
    err = radiometry_error([1.1, 0.9], [0.01, 0.0], [1.0, 1.0], [0.0, 0.0])
    assert err["gain_max_rel_error"] == pytest.approx(0.1)
    assert err["offset_max_abs_error"] == pytest.approx(0.01)
    assert radiometry_error([1.0], [0.0])["gain_max_rel_error"] == 0.0
    with pytest.raises(InputError, match="shapes"):
        radiometry_error([1.0, 1.0], [0.0])


# ---- methods ----------------------------------------------------------------------------------

def test_estimator_recovers_gains_and_offsets_on_a_synthetic_pair():
    _, problem = shaded(64, 4)
    radio = with_radiometry(problem)
    d = estimate_degradation(radio.lr_hsi, radio.hr_msi, 4)
    np.testing.assert_allclose(d.gain, GAINS, rtol=0.02)
    np.testing.assert_allclose(d.offset, OFFSETS, atol=0.005)
    np.testing.assert_allclose(d.srf.sum(axis=1), 1.0)


def test_helper_corrects_the_msi_with_known_gains():
    _, problem = simulate(32, 4)
    resolved = known_or_estimated_degradation(with_radiometry(problem, give=True), "test")
    assert resolved.estimated == ()
    np.testing.assert_allclose(resolved.problem.hr_msi, problem.hr_msi, atol=1e-6)
    assert resolved.problem.msi_gain is None
    assert all(v is None for v in resolved.fused_fields().values())


@pytest.mark.parametrize("method,params", [("fuse", {}), ("hysure", {"iterations": 30}),
                                           ("cnmf", {"endmembers": 8, "inner_iterations": 50}),
                                           ("ltmr", {"iterations": 5, "kmeans_iterations": 5})])
def test_known_setting_with_true_gains_equals_the_plain_pair(method, params):
    x, problem = simulate(64, 4, seed=1)
    plain = get(method, **params).fuse(problem).hr_hsi
    radio = get(method, **params).fuse(with_radiometry(problem, give=True)).hr_hsi
    assert abs(psnr(x, radio) - psnr(x, plain)) < 0.05


def test_run_record_reports_and_evaluate_scores_gains(tmp_path):
    from hmifbench import stages
    from hmifbench.cube import Cube
    from hmifbench.io import write_cube

    x, _ = shaded(32, 4)
    wl = np.linspace(400, 700, x.shape[2])
    pair = degrade(Cube(x, wl), "gain-offset-x4")
    pair_dir = tmp_path / "pair"
    write_cube(pair_dir / "lr_hsi.hdr", pair.lr_hsi)
    write_cube(pair_dir / "hr_msi.hdr", pair.hr_msi)
    (pair_dir / "truth.json").write_text(json.dumps(pair.truth))
    ref = write_cube(tmp_path / "scene.hdr", Cube(x, wl))
    record = stages.fuse("fuse", pair_dir, tmp_path / "out", setting="blind")
    assert len(record["msi_gain"]) == 3 and len(record["msi_offset"]) == 3
    scores = stages.evaluate(tmp_path / "out" / "run.json", ref, pair_dir, tmp_path / "s.json")
    rad = scores["degradation_scores"]["radiometry"]
    assert rad["gain_max_rel_error"] < 0.05 and rad["offset_max_abs_error"] < 0.01
    known = stages.fuse("fuse", pair_dir, tmp_path / "known", setting="known")
    assert known["msi_gain"] is None


# ---- done-when: real CAVE crops ----------------------------------------------------------------

CAVE_CASES = [(4, "chart_toy", 64), (4, "feathers", 64), (8, "chart_toy", 144), (8, "feathers", 144)]
FAST = {"fuse": {}, "hysure": {"iterations": 60},
        "cnmf": {"endmembers": 10, "inner_iterations": 100},
        "ltmr": {"iterations": 15, "kmeans_iterations": 10}}


@pytest.mark.real_data
@pytest.mark.parametrize("scale,scene,size", CAVE_CASES)
def test_blind_methods_survive_gains_and_offsets_on_cave_crops(real_data_dir, scale, scene, size):
    """Gains in [0.7, 1.3], offsets in [0, 0.05] (the gain-offset-x<s> protocols): every blind
    method loses at most 1 dB against the same pair without them, and estimates the gains
    within 2 % and the offsets within 0.005."""
    import scipy.io

    from hmifbench.cube import Cube

    path = next(real_data_dir.glob(f"cave_{scene}_crop*/*.mat"))
    x = scipy.io.loadmat(path)["Omsi"][:size, :size].astype(np.float32)
    cube = Cube(x, 400.0 + 10.0 * np.arange(x.shape[2]))
    plain = degrade(cube, f"gauss-fwhm-x{scale}")
    radio = degrade(cube, f"gain-offset-x{scale}")
    gain, offset = np.array(radio.truth["msi_gain"]), np.array(radio.truth["msi_offset"])
    for method, params in FAST.items():
        ref = get(method, **params).fuse(FusionProblem(plain.lr_hsi, plain.hr_msi, scale))
        out = get(method, **params).fuse(FusionProblem(radio.lr_hsi, radio.hr_msi, scale))
        loss = psnr(x, ref.hr_hsi) - psnr(x, out.hr_hsi)
        assert loss <= 1.0, f"{method}: loses {loss:.2f} dB"
        err = radiometry_error(out.msi_gain, out.msi_offset, gain, offset)
        assert err["gain_max_rel_error"] <= 0.02, (method, err)
        assert err["offset_max_abs_error"] <= 0.005, (method, err)


def test_band_support_restricts_the_estimated_srf():
    from hmifbench.methods._blind import band_support

    wl = np.linspace(400, 700, 31)
    mask = band_support(wl, [[400, 500], [480, 600], [580, 700]])
    assert mask.shape == (3, 31) and mask[0, :11].all() and not mask[0, 11:].any()
    with pytest.raises(InputError, match="cover no HSI band"):
        band_support(wl, [[800, 900]])
    _, problem = shaded(64, 4)
    radio = with_radiometry(problem)
    d = estimate_degradation(radio.lr_hsi, radio.hr_msi, 4, srf_support=mask)
    assert not d.srf[~mask].any()
    np.testing.assert_allclose(d.srf.sum(axis=1), 1.0)
