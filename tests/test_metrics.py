"""Tests of hmifbench.metrics: full-reference indices and profiles."""

import math
import warnings

import numpy as np
import pytest

import hmifbench
from hmifbench.errors import InputError
from hmifbench import metrics as M


def _pair(rows=40, cols=44, bands=5, noise=0.03, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    base = rng.random((rows // 4 + 1, cols // 4 + 1, bands))
    x = np.kron(base, np.ones((4, 4, 1)))[:rows, :cols] * 0.6 + 0.2
    x += 0.05 * rng.random(x.shape)
    y = np.clip(x + noise * rng.standard_normal(x.shape), 0, 1)
    return x.astype(dtype), y.astype(dtype)


def test_profiles_and_keys():
    assert M.PROFILES[0] == "canonical"
    assert M.profile_keys() == ("psnr", "ssim", "sam", "ergas", "rmse", "uiqi", "cc")
    x, y = _pair()
    for p in M.PROFILES:
        scores = M.evaluate(x, y, 4, profile=p)
        assert tuple(scores) == M.profile_keys(p)
        assert all(isinstance(v, float) for v in scores.values())
    with pytest.raises(InputError, match="unknown metric profile"):
        M.evaluate(x, y, 4, profile="nope")


def test_record_shape():
    x, y = _pair()
    rec = M.evaluate_record(hmifbench.Cube(x), y, 4, crop=2)
    assert rec["profile"] == "canonical" and rec["crop"] == 2 and rec["data_range"] == 1.0
    assert rec["scale"] == 4.0 and isinstance(rec["sam_excluded_pixels"], int)
    assert set(rec["scores"]) == set(M.profile_keys())


def test_identical_inputs_no_warnings():
    x, _ = _pair(dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = M.evaluate(x, x.copy(), 4)
    assert s["psnr"] == math.inf
    assert s["sam"] == 0.0 and s["ergas"] == 0.0 and s["rmse"] == 0.0
    assert s["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert s["uiqi"] == pytest.approx(1.0, abs=1e-12) and s["cc"] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ssim_matches_skimage(dtype):
    skm = pytest.importorskip("skimage.metrics")
    x, y = _pair(dtype=dtype)
    ref = skm.structural_similarity(x.astype(np.float64), y.astype(np.float64), channel_axis=-1,
                                    data_range=1.0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)
    assert M.ssim(x, y) == pytest.approx(ref, abs=1e-6)


def test_bad_inputs():
    x, y = _pair()
    with pytest.raises(InputError, match="shape mismatch"):
        M.evaluate(x, y[:, :-1], 4)
    bad = y.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="estimate contains 1 NaN"):
        M.evaluate(x, bad, 4)
    bad = x.copy()
    bad[1, 1, 1] = np.inf
    with pytest.raises(InputError, match="reference contains 0 NaN and 1 infinite"):
        M.psnr(bad, y)
    with pytest.raises(InputError, match="shape"):
        M.sam(x[..., 0], y[..., 0])
