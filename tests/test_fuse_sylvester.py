"""FUSE: the circulant operator and its Sylvester solver, fusion quality against bicubic
upsampling and GSA, the border (padding) handling, noise estimates, bad input, determinism."""


import numpy as np
import pytest

from hmifbench.errors import InputError
from hmifbench.methods import FusionProblem, get
from hmifbench.methods._sylvester import (SylvesterSolver, mad_noise_std, periodic_adjoint,
                                              periodic_degrade, regression_noise_std,
                                              transfer_function)
from hmifbench.metrics import psnr, sam
from hmifbench.observation import (gaussian_psf, spatial_degrade)
from tests.synthetic_pairs import make_scene, simulate


# ---- the operator and the closed form -------------------------------------------------------

@pytest.mark.parametrize("scale, kernel", [(4, gaussian_psf(7, 1.5)), (8, gaussian_psf(13, 3.0)),
                                           (2, np.outer([1, 2, 2, 1], [1, 3, 3, 1]) / 48.0)])
def test_periodic_operator_is_the_observation_model_with_wrap_border(scale, kernel):
    rng = np.random.default_rng(0)
    x = rng.random((32, 24, 3)).astype(np.float32)
    offset = scale // 2 - 1
    G = transfer_function(kernel, (32, 24), offset)
    y = np.moveaxis(periodic_degrade(np.moveaxis(x, 2, 0).astype(np.float64), G, scale), 0, 2)
    np.testing.assert_allclose(y, spatial_degrade(x, kernel, scale, offset, "wrap"), atol=1e-6)
    a, b = rng.random((3, 32, 24)), rng.random((3, 32 // scale, 24 // scale))
    assert np.sum(periodic_degrade(a, G, scale) * b) == pytest.approx(np.sum(a * periodic_adjoint(b, G, scale)))


def test_sylvester_solver_solves_the_normal_equations():
    rng = np.random.default_rng(1)
    p, scale = 4, 4
    G = transfer_function(gaussian_psf(9, 2.0), (32, 32), 1)
    m = rng.random((p, p))
    A = m @ m.T + np.eye(p)
    m = rng.random((p, p))
    Bm = m @ m.T + 0.05 * np.eye(p)
    U = rng.standard_normal((p, 32, 32))
    C2U = periodic_adjoint(periodic_degrade(U, G, scale), G, scale)
    rhs = np.tensordot(A, C2U, axes=1) + np.tensordot(Bm, U, axes=1)
    np.testing.assert_allclose(SylvesterSolver(G, scale, A, Bm).solve(rhs), U, atol=1e-9)


# ---- quality --------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [4, 8])
def test_fuse_beats_bicubic_upsampling(scale):
    x, problem = simulate(64, scale, seed=0)
    fused = get("fuse").fuse(problem).hr_hsi
    base = get("upsample").fuse(problem).hr_hsi
    assert fused.shape == x.shape and fused.dtype == np.float32
    assert psnr(x, fused) > psnr(x, base) + 8


@pytest.mark.parametrize("seed", [0, 1])
def test_fuse_beats_gsa_at_x8_in_psnr_and_sam(seed):
    x, problem = simulate(64, 8, seed=seed)
    fused = get("fuse").fuse(problem).hr_hsi
    gsa = get("gsa").fuse(problem).hr_hsi
    assert psnr(x, fused) > psnr(x, gsa) + 3
    assert sam(x, fused) < sam(x, gsa)


def test_padding_handles_the_periodic_assumption_on_reflect101_data():
    # The FFT solver assumes a periodic blur; the data were blurred with reflect101 borders.
    # Without padding the wrap-around discontinuity costs many dB at the image border.
    x, problem = simulate(64, 8, seed=0)
    padded = get("fuse").fuse(problem)
    unpadded = get("fuse", pad=0).fuse(problem).hr_hsi
    assert padded.extras["pad_lr"][0] > 0
    assert psnr(x, padded.hr_hsi) > psnr(x, unpadded) + 3
    # With periodic data no padding is needed, and none is added by default.
    xw, wrapped = simulate(64, 8, seed=0, border="wrap")
    fused = get("fuse").fuse(wrapped)
    assert fused.extras["pad_lr"] == [0, 0]
    assert psnr(xw, fused.hr_hsi) > 40


def test_noise_estimates_and_robustness_to_noise():
    rng = np.random.default_rng(3)
    cube = make_scene(48, seed=2).astype(np.float64)
    noisy = cube + 0.01 * rng.standard_normal(cube.shape)
    np.testing.assert_allclose(regression_noise_std(noisy), 0.01, rtol=0.25)
    np.testing.assert_allclose(mad_noise_std(noisy[..., :3]), 0.01, rtol=0.25)
    x, problem = simulate(64, 8, seed=0, snr=30)
    fused = get("fuse").fuse(problem).hr_hsi
    assert psnr(x, fused) > psnr(x, get("upsample").fuse(problem).hr_hsi) + 2


def test_blind_setting_uses_the_hysure_estimator():
    x, problem = simulate(64, 4, seed=1)
    fused = get("fuse").fuse(problem.blind())
    assert fused.psf is not None and fused.srf is not None
    assert fused.extras["degradation"] == "estimated"
    assert psnr(x, fused.hr_hsi) > psnr(x, get("upsample").fuse(problem).hr_hsi) + 5


def test_only_the_missing_degradation_is_estimated():
    x, problem = simulate(32, 4, seed=1)
    fused = get("fuse").fuse(FusionProblem(problem.lr_hsi, problem.hr_msi, 4, psf=problem.psf))
    assert fused.psf is None and fused.srf is not None
    np.testing.assert_allclose(fused.srf.sum(axis=1), 1.0, atol=1e-6)


# ---- parameters, bad input, determinism -----------------------------------------------------

@pytest.mark.parametrize("params, name", [({"subspace_dim": 0}, "subspace_dim"),
                                          ({"prior_weight": 0.0}, "prior_weight"),
                                          ({"hsi_noise_std": -1.0}, "hsi_noise_std"),
                                          ({"min_noise_std": 0}, "min_noise_std"),
                                          ({"pad": -1}, "pad"), ({"bogus": 1}, "bogus")])
def test_bad_parameters_name_the_parameter(params, name):
    with pytest.raises(InputError, match=name):
        get("fuse", **params)


def test_bad_inputs_raise_input_errors():
    x, problem = simulate(32, 4)
    lr, hr = problem.lr_hsi, problem.hr_msi
    with pytest.raises(InputError, match="columns"):
        FusionProblem(lr, hr, 4, psf=problem.psf, srf=problem.srf[:, :-1])
    with pytest.raises(InputError, match="scale"):
        FusionProblem(lr, hr[:-2], 4, psf=problem.psf, srf=problem.srf)
    bad = lr.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        FusionProblem(bad, hr, 4, psf=problem.psf, srf=problem.srf)
    with pytest.raises(InputError, match="sum to 1"):
        FusionProblem(lr, hr, 4, psf=problem.psf * 2, srf=problem.srf)


def test_deterministic():
    _, problem = simulate(32, 4, seed=2)
    a = get("fuse").fuse(problem, seed=0).hr_hsi
    b = get("fuse").fuse(problem, seed=0).hr_hsi
    np.testing.assert_array_equal(a, b)


def test_conformance_checks():
    from hmifbench.testing import check_method

    check_method("fuse")
