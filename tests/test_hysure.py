"""HySure: the PSF/SRF estimator, the ADMM's operators, fusion quality in the known and blind
settings, parameters, bad input, determinism."""

import numpy as np
import pytest

from hmifbench.errors import InputError
from hmifbench.methods import FusionProblem, get
from hmifbench.methods.hysure import (HySure, _dh, _dh_t, _dv, _dv_t, _kernel_image,
                                      estimate_degradation, hysure_fuse, psf_design_matrix)
from hmifbench.metrics import psnr, sam
from hmifbench.observation import (add_noise, blur, check_psf, check_srf, gaussian_psf,
                                   spatial_degrade)
from tests.test_mtf_glp import gaussian, scene, simulate, three_bump_srf

FAST = {"iterations": 40}


def second_moment_sigma(kernel):
    """σ of an isotropic kernel from its second central moment: E‖u − ū‖² = 2σ²."""
    rows, cols = np.indices(kernel.shape)
    mr, mc = (kernel * rows).sum(), (kernel * cols).sum()
    return float(np.sqrt((kernel * ((rows - mr) ** 2 + (cols - mc) ** 2)).sum() / 2)), (mr, mc)


@pytest.mark.parametrize("border", ["reflect101", "symmetric", "wrap", "zero"])
@pytest.mark.parametrize("size", [5, 6])
def test_design_matrix_follows_the_observation_conventions(border, size):
    rng = np.random.default_rng(0)
    msi = rng.random((32, 32, 3)).astype(np.float32)
    kernel = rng.random((size, size))
    kernel /= kernel.sum()
    a = psf_design_matrix(msi, size, 4, 1, border)
    expected = spatial_degrade(msi, kernel, 4, 1, border)
    np.testing.assert_allclose(a @ kernel.ravel(), expected.ravel(), atol=1e-6)


def test_fft_operators_match_the_periodic_blur_and_are_adjoint():
    rng = np.random.default_rng(1)
    kernel = rng.random((5, 4))
    kernel /= kernel.sum()
    x = rng.random((32, 32, 1))
    g = _kernel_image(kernel, (32, 32))
    via_fft = np.fft.irfft2(np.fft.rfft2(x[..., 0]) * np.fft.rfft2(g), s=(32, 32))
    np.testing.assert_allclose(via_fft, blur(x, kernel, "wrap")[..., 0], atol=1e-6)
    u, v = rng.random((2, 3, 8, 9))
    for fwd, adj in ((_dh, _dh_t), (_dv, _dv_t)):
        fu, av = np.empty_like(u), np.empty_like(v)
        fwd(u, fu)
        adj(v, av)
        assert np.sum(fu * v) == pytest.approx(np.sum(u * av), rel=1e-12)


@pytest.mark.parametrize("scale,size,sigma,snr_db", [(4, 64, 2.0, None), (8, 96, 3.6, None),
                                                     (4, 64, 1.5, 35.0)])
def test_estimator_recovers_a_gaussian_psf_and_the_srf(scale, size, sigma, snr_db):
    x = scene(size, seed=4)
    truth = gaussian_psf(2 * int(np.ceil(3 * sigma)) + 1, sigma)
    yh, ym, srf = simulate(x, scale, truth)
    if snr_db is not None:
        rng = np.random.default_rng(0)
        yh, ym = add_noise(yh, snr_db, rng), add_noise(ym, snr_db + 5, rng)
    psf_size = truth.shape[0] + 2
    # The plain model (unit gain, no offset), then the radiometric one, which has 2·b more
    # unknowns: its SRF is less precise on this noisy pair (measured 0.10 → 0.15).
    for fit_offset, srf_tolerance in ((False, 0.15), (True, 0.2)):
        psf, srf_est, gain, offset = estimate_degradation(yh, ym, scale, psf_size,
                                                          fit_offset=fit_offset)
        check_psf(psf)
        check_srf(srf_est, x.shape[2])
        est_sigma, (mr, mc) = second_moment_sigma(psf)
        assert est_sigma == pytest.approx(sigma, rel=0.10)
        centre = (psf_size - 1) // 2
        assert abs(mr - centre) < 0.25 and abs(mc - centre) < 0.25
        # SRF: within tolerance (Frobenius, relative); each band's centroid within half a band.
        assert np.linalg.norm(srf_est - srf) / np.linalg.norm(srf) < srf_tolerance
        bands = np.arange(x.shape[2])
        np.testing.assert_allclose(srf_est @ bands, srf @ bands, atol=0.5)
        np.testing.assert_allclose(gain, 1.0, atol=0.03)
        np.testing.assert_allclose(offset, 0.0, atol=0.01 if fit_offset else 0.0)


def test_estimator_keeps_what_is_known():
    x = scene(64, seed=5)
    truth = gaussian(4)
    yh, ym, srf = simulate(x, 4, truth)
    psf, srf_est, *_ = estimate_degradation(yh, ym, 4, psf=truth)
    np.testing.assert_array_equal(psf, truth)
    assert np.linalg.norm(srf_est - srf) / np.linalg.norm(srf) < 0.1
    psf_est, srf_same, *_ = estimate_degradation(yh, ym, 4, truth.shape[0], srf=srf)
    np.testing.assert_array_equal(srf_same, srf)
    assert second_moment_sigma(psf_est)[0] == pytest.approx(1.25 * 4 / 2.3548, rel=0.05)


@pytest.mark.parametrize("scale,size", [(4, 64), (8, 96)])
def test_beats_upsampling_known_and_blind(scale, size):
    x = scene(size, seed=6)
    truth = gaussian(scale)
    yh, ym, srf = simulate(x, scale, truth)
    base = psnr(x, get("upsample").fuse(FusionProblem(yh, ym, scale)).hr_hsi)
    known = get("hysure", **FAST).fuse(FusionProblem(yh, ym, scale, psf=truth, srf=srf))
    assert known.psf is None and known.srf is None and known.iterations == FAST["iterations"]
    assert known.extras["estimated"] == []
    assert psnr(x, known.hr_hsi) > base + 5.0
    blind = get("hysure", **FAST).fuse(FusionProblem(yh, ym, scale))
    assert blind.extras["estimated"] == ["psf", "srf"]
    check_psf(blind.psf)
    check_srf(blind.srf, x.shape[2])
    assert blind.psf.shape == (2 * scale + 1,) * 2
    assert psnr(x, blind.hr_hsi) > base + 5.0


def test_beats_gsa_at_x8_in_the_known_setting():
    x = scene(96, seed=7)
    truth = gaussian(8)
    yh, ym, srf = simulate(x, 8, truth)
    problem = FusionProblem(yh, ym, 8, psf=truth, srf=srf)
    gsa = get("gsa").fuse(problem).hr_hsi
    out = get("hysure", **FAST).fuse(problem).hr_hsi
    assert psnr(x, out) > psnr(x, gsa) + 1.0
    assert sam(x, out) < sam(x, gsa)


def test_periodic_boundary_and_zero_start_run():
    x = scene(64, seed=8)
    truth = gaussian(4)
    yh, ym, srf = simulate(x, 4, truth)
    problem = FusionProblem(yh, ym, 4, psf=truth, srf=srf)
    base = psnr(x, get("upsample").fuse(problem).hr_hsi)
    for params in ({"boundary": "periodic"}, {"init": "zeros", "iterations": 150}):
        fused = get("hysure", **{**FAST, **params}).fuse(problem)
        assert psnr(x, fused.hr_hsi) > base + 3.0
    assert fused.extras["margin"] > 0


def test_subspace_is_capped_at_the_band_count():
    x = scene(32, seed=9, bands=6, n_materials=3)
    srf = three_bump_srf(6)
    truth = gaussian(4)
    yh = spatial_degrade(x, truth, 4)
    ym = (x.reshape(-1, 6) @ srf.T).reshape(32, 32, 3)
    fused = get("hysure", iterations=10).fuse(FusionProblem(yh, ym, 4, psf=truth, srf=srf))
    assert fused.extras["subspace_dim"] == 6 and fused.hr_hsi.shape == x.shape


def test_metadata():
    d = HySure.describe()
    assert d["blind"] is True and d["needs_psf"] is False and d["needs_srf"] is False
    assert d["params"]["iterations"]["default"] == 200
    assert d["params"]["lambda_phi"]["default"] == 5e-4
    assert all(p["doc"] for p in d["params"].values())


@pytest.mark.parametrize("params,word", [
    ({"subspace_dim": 0}, "subspace_dim"), ({"mu": 0}, "mu"), ({"lambda_m": -1}, "lambda_m"),
    ({"lambda_phi": -1e-3}, "lambda_phi"), ({"iterations": 0}, "iterations"),
    ({"boundary": "mirror"}, "boundary"), ({"init": "random"}, "init"),
    ({"psf_size": 0}, "psf_size"), ({"estimator_alternations": 0}, "estimator_alternations"),
    ({"lambda_b": -1.0}, "lambda_b"), ({"step": 1}, "step"),
])
def test_bad_parameters_are_named(params, word):
    with pytest.raises(InputError, match=word):
        get("hysure", **params)


def test_bad_inputs_raise_input_errors():
    x = scene(64)
    truth = gaussian(4)
    yh, ym, srf = simulate(x, 4, truth)
    method = get("hysure", iterations=5)
    with pytest.raises(InputError, match="columns"):
        method.fuse(FusionProblem(yh[..., :30], ym, 4, srf=srf))
    with pytest.raises(InputError, match="scale 3"):
        method.fuse(FusionProblem(yh, ym, 3))
    bad = ym.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(InputError, match="NaN or infinite"):
        method.fuse(FusionProblem(yh, bad, 4))
    with pytest.raises(InputError, match="psf_size"):
        estimate_degradation(yh, ym, 4, 0)
    with pytest.raises(InputError, match="srf_support"):
        estimate_degradation(yh, ym, 4, srf_support=np.ones((2, 31), bool))
    with pytest.raises(InputError, match="hr_msi"):
        estimate_degradation(yh, ym[:-4], 4)
    with pytest.raises(InputError, match="needs a PSF"):
        hysure_fuse(yh, ym, None, srf, 4, 1)


def test_deterministic():
    x = scene(64, seed=2)
    yh, ym, _ = simulate(x, 4, gaussian(4))
    problem = FusionProblem(yh, ym, 4)
    a = get("hysure", iterations=20).fuse(problem, seed=0)
    b = get("hysure", iterations=20).fuse(problem, seed=1)
    np.testing.assert_array_equal(a.hr_hsi, b.hr_hsi)
    np.testing.assert_array_equal(a.psf, b.psf)
    np.testing.assert_array_equal(a.srf, b.srf)
