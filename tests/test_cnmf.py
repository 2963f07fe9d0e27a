"""CNMF: VCA, virtual dimensionality, the blind PSF/SRF estimate, fusion quality against
bicubic upsampling and GSA, the blind setting, bad input, determinism."""


import numpy as np
import pytest

from hmifbench.errors import InputError
from hmifbench.methods import FusionProblem, get
from hmifbench.methods.cnmf import (estimate_psf_and_srf, estimate_srf_nnls, vca,
                                    virtual_dimensionality)
from hmifbench.metrics import psnr, sam
from hmifbench.observation import (normalise_srf, spatial_degrade,
                                   spectral_degrade)
from tests.synthetic_pairs import simulate

# Fewer endmembers and updates than the defaults (M = 30, 200 updates) keep the tests fast.
FAST = {"endmembers": 10, "inner_iterations": 100}


# ---- building blocks ------------------------------------------------------------------------

def pure_pixel_mixture(noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    endmembers = rng.random((31, 5))
    abundances = rng.dirichlet(np.full(5, 0.5), 2000).T
    abundances[:, :5] = np.eye(5)                 # pixels 0..4 are pure
    y = endmembers @ abundances
    return y + noise * rng.standard_normal(y.shape)


@pytest.mark.parametrize("noise", [0.0, 0.002])
def test_vca_finds_the_pure_pixels(noise):
    y = pure_pixel_mixture(noise)
    assert sorted(vca(y, 5, np.random.default_rng(1)).tolist()) == [0, 1, 2, 3, 4]


def test_virtual_dimensionality_counts_the_endmembers_of_a_noisy_mixture():
    assert virtual_dimensionality(pure_pixel_mixture(0.005)) == 5


@pytest.mark.parametrize("scale", [4, 8])
def test_blind_degradation_estimate(scale):
    _, problem = simulate(64, scale)
    (psf, srf, gain, offset), sigma = estimate_psf_and_srf(problem.blind())
    assert sigma == pytest.approx(scale / 2, rel=0.06)   # the truth is σ = s/2
    # The (non-unique) NNLS SRF reproduces the degraded MSI from the LR-HSI.
    lr_msi = spatial_degrade(problem.hr_msi, psf, scale, problem.offset)
    pred = problem.lr_hsi.reshape(-1, 31) @ (srf * gain[:, None]).T + offset
    assert np.sqrt(np.mean((pred - lr_msi.reshape(-1, 3)) ** 2)) < 1e-3
    assert (srf >= 0).all()


def test_nnls_srf_recovers_a_well_posed_response():
    rng = np.random.default_rng(0)
    lr = rng.random((20, 20, 8))
    truth = normalise_srf(rng.random((3, 8)))
    srf, offset, residual = estimate_srf_nnls(lr, spectral_degrade(lr, truth))
    np.testing.assert_allclose(srf, truth, atol=1e-5)
    np.testing.assert_allclose(offset, 0.0, atol=1e-5)
    assert residual < 1e-6


# ---- quality --------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [4, 8])
def test_cnmf_beats_bicubic_upsampling(scale):
    x, problem = simulate(64, scale, seed=0)
    fused = get("cnmf", **FAST).fuse(problem)
    assert fused.hr_hsi.shape == x.shape and fused.hr_hsi.dtype == np.float32
    assert fused.iterations > 0
    assert psnr(x, fused.hr_hsi) > psnr(x, get("upsample").fuse(problem).hr_hsi) + 8


@pytest.mark.parametrize("seed", [0, 1])
def test_cnmf_beats_gsa_at_x8_in_psnr_and_sam(seed):
    x, problem = simulate(64, 8, seed=seed)
    fused = get("cnmf", **FAST).fuse(problem).hr_hsi
    gsa = get("gsa").fuse(problem).hr_hsi
    assert psnr(x, fused) > psnr(x, gsa) + 3
    assert sam(x, fused) < sam(x, gsa)


def test_blind_setting_is_almost_as_good_as_the_known_one():
    x, problem = simulate(64, 8, seed=1)
    known = get("cnmf", **FAST).fuse(problem)
    blind = get("cnmf", **FAST).fuse(problem.blind())
    assert known.psf is None and known.extras["degradation"] == "given"
    assert blind.psf is not None and blind.srf is not None
    np.testing.assert_allclose(blind.srf.sum(axis=1), 1.0)
    assert psnr(x, blind.hr_hsi) > psnr(x, known.hr_hsi) - 1.0


def test_robust_to_noise():
    x, problem = simulate(64, 8, seed=0, snr=30)
    fused = get("cnmf", **FAST).fuse(problem).hr_hsi
    assert psnr(x, fused) > psnr(x, get("upsample").fuse(problem).hr_hsi) + 2


# ---- parameters, bad input, determinism -----------------------------------------------------

@pytest.mark.parametrize("params, name", [({"endmembers": 0}, "endmembers"),
                                          ({"inner_iterations": 0}, "inner_iterations"),
                                          ({"outer_iterations": 0}, "outer_iterations"),
                                          ({"vd_false_alarm": 1.5}, "vd_false_alarm"),
                                          ({"inner_tol": -1.0}, "inner_tol"),
                                          ({"sum_to_one": 0.0}, "sum_to_one"),
                                          ({"endmembers": "many"}, "endmembers")])
def test_bad_parameters_name_the_parameter(params, name):
    with pytest.raises(InputError, match=name):
        get("cnmf", **params)


def test_bad_inputs_raise_input_errors():
    _, problem = simulate(32, 4)
    lr, hr = problem.lr_hsi, problem.hr_msi
    with pytest.raises(InputError, match="columns"):
        FusionProblem(lr, hr, 4, srf=problem.srf[:, :-1])
    with pytest.raises(InputError, match="scale"):
        FusionProblem(lr, hr[:, :-3], 4)
    bad = hr.copy()
    bad[1, 2, 0] = np.inf
    with pytest.raises(InputError, match="NaN or infinite"):
        FusionProblem(lr, bad, 4)


def test_outer_iterations_run_and_stop():
    x, problem = simulate(32, 4, seed=3)
    fused = get("cnmf", endmembers=6, inner_iterations=30, outer_iterations=3).fuse(problem)
    assert 1 <= fused.extras["outer_iterations"] <= 3
    assert np.isfinite(fused.hr_hsi).all()


def test_deterministic_under_a_seed():
    _, problem = simulate(32, 4, seed=2)
    a = get("cnmf", **FAST).fuse(problem, seed=5).hr_hsi
    b = get("cnmf", **FAST).fuse(problem, seed=5).hr_hsi
    np.testing.assert_array_equal(a, b)


def test_conformance_checks():
    from hmifbench.testing import check_method

    check_method("cnmf")
