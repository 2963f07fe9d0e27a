"""The observation model: PSF, blur, decimation phase, SRF and noise."""

import numpy as np
import pytest
from scipy import ndimage

from hmifbench.errors import InputError
from hmifbench.observation import (add_noise, blur, box_psf, check_srf, decimate, default_offset,
                                   gaussian_psf, normalise_srf, resample_srf, spatial_degrade,
                                   spectral_degrade)


def test_gaussian_psf_sums_to_one_and_matches_opencv_construction():
    h = gaussian_psf(31, 2.0)
    assert h.shape == (31, 31)
    assert h.sum() == pytest.approx(1.0, abs=1e-12)
    # OpenCV's getGaussianKernel(31, 2): normalised exp(-(i-15)^2 / (2*4)); outer product.
    g = np.exp(-((np.arange(31) - 15) ** 2) / 8.0)
    g /= g.sum()
    np.testing.assert_allclose(h, np.outer(g, g), atol=1e-15)


def test_gaussian_psf_second_moment_gives_sigma():
    h = gaussian_psf(41, 3.0, sigma_y=1.5)
    r = np.arange(41) - 20
    var_cols = (h.sum(0) * r**2).sum()
    var_rows = (h.sum(1) * r**2).sum()
    assert np.sqrt(var_cols) == pytest.approx(3.0, rel=1e-3)
    assert np.sqrt(var_rows) == pytest.approx(1.5, rel=1e-3)


def test_default_offset_is_documented_phase():
    assert [default_offset(s) for s in (1, 2, 4, 8, 32)] == [0, 0, 1, 3, 15]


def test_decimation_keeps_pixel_s_i_plus_offset():
    x = np.arange(64 * 64, dtype=np.float32).reshape(64, 64, 1)
    lr = decimate(x, 32)
    assert lr.shape == (2, 2, 1)
    np.testing.assert_array_equal(lr[:, :, 0], x[15::32, 15::32, 0])
    np.testing.assert_array_equal(decimate(x, 8, offset=0)[:, :, 0], x[::8, ::8, 0])


def test_box_psf_with_default_phase_equals_block_mean():
    rng = np.random.default_rng(0)
    x = rng.random((32, 40, 3)).astype(np.float32)
    for s in (2, 4, 8):
        lr = spatial_degrade(x, box_psf(s), s)
        block = x.reshape(32 // s, s, 40 // s, s, 3).mean(axis=(1, 3))
        np.testing.assert_allclose(lr, block, atol=1e-6)


def test_blur_separable_and_fft_paths_agree_with_direct_correlation():
    rng = np.random.default_rng(1)
    x = rng.random((40, 36, 2))
    for psf in (gaussian_psf(7, 1.5), gaussian_psf(9, 2.0, sigma_y=1.0, angle_deg=30.0)):
        expected = np.stack([ndimage.correlate(x[:, :, b], psf, mode="mirror") for b in range(2)], -1)
        np.testing.assert_allclose(blur(x, psf, "reflect101"), expected, atol=1e-6)


def test_blur_border_modes_differ_only_near_the_border():
    rng = np.random.default_rng(2)
    x = rng.random((30, 30, 1))
    psf = gaussian_psf(5, 1.0)
    a, b = blur(x, psf, "reflect101"), blur(x, psf, "symmetric")
    np.testing.assert_allclose(a[2:-2, 2:-2], b[2:-2, 2:-2], atol=1e-6)
    assert np.abs(a - b).max() > 1e-3
    with pytest.raises(InputError, match="unknown border"):
        blur(x, psf, "clamp")


def test_decimation_rejects_sizes_not_multiple_of_scale():
    with pytest.raises(InputError, match="not a multiple of the scale 8"):
        decimate(np.zeros((30, 32, 2)), 8)


def test_srf_rows_sum_to_one_and_projection():
    rng = np.random.default_rng(3)
    r = normalise_srf(rng.random((3, 31)))
    np.testing.assert_allclose(r.sum(1), 1.0)
    x = rng.random((8, 8, 31)).astype(np.float32)
    m = spectral_degrade(x, r)
    np.testing.assert_allclose(m[2, 5], r @ x[2, 5], rtol=1e-5)
    with pytest.raises(InputError, match="sum to 1"):
        check_srf(r * 2)
    with pytest.raises(InputError, match="31 columns but the HSI has 30"):
        check_srf(r, bands=30)


def test_resample_srf_renormalises_and_reports_coverage():
    nm = np.arange(350.0, 801.0)
    curves = np.stack([np.exp(-0.5 * ((nm - c) / 20) ** 2) for c in (450, 550, 720)], 1)
    srf, covered = resample_srf(nm, curves, np.arange(400.0, 701.0, 10.0))
    np.testing.assert_allclose(srf.sum(1), 1.0)
    assert covered[0] > 0.99 and covered[1] > 0.99
    assert 0.2 < covered[2] < 0.7  # the 720 nm band is cut at 705 nm


def test_noise_hits_target_snr_per_band():
    rng = np.random.default_rng(4)
    x = (0.2 + rng.random((256, 256, 4)) * np.array([0.1, 0.5, 1.0, 2.0])).astype(np.float32)
    y = add_noise(x, 30.0, np.random.default_rng(5))
    noise = y.astype(np.float64) - x
    snr = 10 * np.log10((x.astype(np.float64) ** 2).sum((0, 1)) / (noise**2).sum((0, 1)))
    np.testing.assert_allclose(snr, 30.0, atol=0.1)
    np.testing.assert_array_equal(add_noise(x, None, rng), x)


def test_noise_is_reproducible_from_seed():
    x = np.ones((16, 16, 2), np.float32)
    a = add_noise(x, 20.0, np.random.default_rng(7))
    b = add_noise(x, 20.0, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


def test_nan_input_is_a_clear_error():
    x = np.zeros((8, 8, 2), np.float32)
    x[1, 1, 1] = np.nan
    with pytest.raises(InputError, match="1 NaN or infinite"):
        blur(x, gaussian_psf(3, 1.0))
