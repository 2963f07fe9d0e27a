"""Tests of hmifbench.metrics: full-reference indices, profiles, records, input checks."""

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import hmifbench
from hmifbench import metrics as M
from hmifbench.errors import InputError
from hmifbench.metrics import _core

DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def _pair(rows=40, cols=44, bands=5, noise=0.03, seed=0, dtype=np.float64):
    """Blocky texture in [0.2, 0.85] plus a noisy, clipped estimate."""
    rng = np.random.default_rng(seed)
    base = rng.random((rows // 4 + 1, cols // 4 + 1, bands))
    x = np.kron(base, np.ones((4, 4, 1)))[:rows, :cols] * 0.6 + 0.2
    x += 0.05 * rng.random(x.shape)
    y = np.clip(x + noise * rng.standard_normal(x.shape), 0, 1)
    return x.astype(dtype), y.astype(dtype)


def worked_example_pair():
    """The pair of docs/metrics.md § Worked example (closed form, no random numbers)."""
    i, j = np.mgrid[0:40, 0:40].astype(np.float64)
    b = np.arange(3.0)
    x = 0.5 + 0.25 * np.sin(2 * np.pi * i[..., None] / 16 + b) * np.cos(2 * np.pi * j[..., None] / 20)
    y = x + 0.02 * np.cos(2 * np.pi * (i[..., None] + 2 * j[..., None]) / 7 + b) + 0.01 * (b - 1)
    return x, y


# ------------------------------------------------------------------ golden values

def test_psnr_rmse_golden():
    x = np.full((6, 5, 2), 0.5)
    y = x + 0.01
    assert M.psnr(x, y) == pytest.approx(40.0, abs=1e-9)
    assert M.rmse(x, y) == pytest.approx(0.01, abs=1e-12)
    # per-band averaging: band errors 0.01 and 0.1 -> (40 + 20) / 2
    y[..., 1] = 0.6
    assert M.psnr(x, y) == pytest.approx(30.0, abs=1e-9)
    assert M.rmse(x, y) == pytest.approx(math.sqrt((1e-4 + 1e-2) / 2), abs=1e-12)
    # declared range: peak 2 adds 20·log10(2) dB
    assert M.psnr(x, y, data_range=2.0) == pytest.approx(30.0 + 20 * math.log10(2), abs=1e-9)


def test_ergas_golden():
    x = np.empty((4, 4, 2))
    x[..., 0], x[..., 1] = 0.5, 0.25
    y = x + 0.01
    # (100/4)·sqrt(((1e-4/0.25) + (1e-4/0.0625)) / 2) = 25·sqrt(1e-3)
    assert M.ergas(x, y, 4) == pytest.approx(25 * math.sqrt(1e-3), rel=1e-12)
    assert M.ergas(x, y, 8) == pytest.approx(12.5 * math.sqrt(1e-3), rel=1e-12)


def test_sam_golden_and_exclusion():
    x = np.array([[[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]])
    y = np.array([[[1.0, 1.0], [2.0, 2.0], [1.0, 1.0]]])
    # 45° and 0°; the third pixel has a zero reference spectrum and is excluded
    value, excluded = M.sam(x, y, return_excluded=True)
    assert value == pytest.approx(22.5, abs=1e-12) and excluded == 1
    rec = M.evaluate_record(np.tile(x, (12, 4, 1)), np.tile(y, (12, 4, 1)), 4, profile="yokoya")
    assert rec["sam_excluded_pixels"] == 12 * 4
    assert rec["scores"]["sam"] == pytest.approx(22.5, abs=1e-12)
    assert math.isnan(M.sam(np.zeros((2, 2, 3)), np.ones((2, 2, 3))))


def test_sam_small_angles_accurate_in_float32():
    # arccos of a float32 cosine would be off by ~0.03° here; the exact angle is atan(1e-4)
    x = np.zeros((8, 8, 2), np.float32)
    x[..., 0] = 1.0
    y = x.copy()
    y[..., 1] = 1e-4
    assert M.sam(x, y) == pytest.approx(math.degrees(math.atan(1e-4)), rel=1e-5)


def test_cc_golden():
    x = np.arange(1.0, 17.0).reshape(4, 4, 1)
    assert M.cc(x, 2 * x + 3) == pytest.approx(1.0, abs=1e-12)
    assert M.cc(x, -x) == pytest.approx(-1.0, abs=1e-12)
    # a constant band has no correlation and is left out of the mean
    x2 = np.concatenate([x, np.ones_like(x)], axis=2)
    assert M.cc(x2, np.concatenate([-x, np.ones_like(x)], axis=2)) == pytest.approx(-1.0, abs=1e-12)


def _q_direct(a, b):
    """Wang & Bovik's Q of two equal-size windows, straight from eq. 1, in float64."""
    a, b = a.ravel(), b.ravel()
    ma, mb = a.mean(), b.mean()
    va, vb = a.var(), b.var()
    cov = np.mean((a - ma) * (b - mb))
    return 4 * cov * ma * mb / ((va + vb) * (ma ** 2 + mb ** 2))


def test_uiqi_golden_and_sliding_window():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])[..., None]
    y = np.array([[1.0, 2.0], [3.0, 5.0]])[..., None]
    assert M.uiqi(x, y, window=2) == pytest.approx(_q_direct(x, y), abs=1e-12)
    # 3×4 image, window 2: mean over the 2×3 valid positions
    rng = np.random.default_rng(1)
    a, b = rng.random((3, 4, 1)), rng.random((3, 4, 1))
    expected = np.mean([_q_direct(a[i:i + 2, j:j + 2], b[i:i + 2, j:j + 2])
                        for i in range(2) for j in range(3)])
    assert M.uiqi(a, b, window=2) == pytest.approx(expected, abs=1e-12)


def test_uiqi_flat_windows_follow_wang_bovik_conventions():
    x = np.full((4, 4, 1), 0.3)
    y = np.full((4, 4, 1), 0.6)
    # flat windows: Q reduces to the luminance term 2·0.3·0.6 / (0.09 + 0.36) = 0.8
    assert M.uiqi(x, y, window=4) == pytest.approx(0.8, abs=1e-12)
    assert M.uiqi(x.astype(np.float32), y.astype(np.float32), window=4) == pytest.approx(0.8, abs=1e-6)
    assert M.uiqi(x, x, window=4) == 1.0
    z = np.zeros((4, 4, 1))
    assert M.uiqi(z, z, window=4) == 1.0


def test_uiqi_float32_matches_float64_with_dark_and_flat_regions():
    x, y = _pair(rows=64, cols=64, bands=3)
    x[:20, :30] = 0.0                       # exactly flat, zero reference (a no-data corner)
    y[:20, :30] = 0.0
    x[40:, 40:] = 0.02 + 1e-3 * np.random.default_rng(5).random((24, 24, 3))   # dark, weak texture
    q64 = M.uiqi(x, y)
    q32 = M.uiqi(x.astype(np.float32), y.astype(np.float32))
    assert q32 == pytest.approx(q64, abs=2e-5)


# -------------------------------------------------------------- SSIM vs skimage

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("data_range", [1.0, 2.5])
def test_ssim_matches_skimage(dtype, data_range):
    skm = pytest.importorskip("skimage.metrics")
    x, y = _pair(dtype=dtype)
    ref = skm.structural_similarity(x.astype(np.float64), y.astype(np.float64), channel_axis=-1,
                                    data_range=data_range, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)
    assert M.ssim(x, y, data_range=data_range) == pytest.approx(ref, abs=1e-6)


def test_ssim_border_is_not_used():
    # skimage filters with reflected borders and then drops a 5-pixel strip; our valid
    # filtering never reads outside the image: changing pixels outside the valid windows'
    # union is impossible, but changing a corner pixel must change only windows covering it.
    x, y = _pair(rows=24, cols=24, bands=1)
    base = M.ssim(x, y)
    y2 = y.copy()
    y2[0, 0, 0] += 0.3
    assert M.ssim(x, y2) != base


def test_mossfuse_ssim_matches_skimage_defaults():
    skm = pytest.importorskip("skimage.metrics")
    x, y = _pair(dtype=np.float32)
    ref = skm.structural_similarity(x, np.clip(y, 0, 1), channel_axis=-1, data_range=1,
                                    K1=0.01, K2=0.03)
    assert M.evaluate(x, y, 4, profile="mossfuse")["ssim"] == pytest.approx(ref, abs=1e-6)


def test_mossfuse_uiqi_matches_sewar():
    sewar = pytest.importorskip("sewar.full_ref")
    x, y = _pair(dtype=np.float32)
    ref = sewar.uqi(x, np.clip(y, 0, 1))
    assert M.evaluate(x, y, 4, profile="mossfuse")["uiqi"] == pytest.approx(ref, abs=1e-6)


# ------------------------------------------------------------ profiles, records

def test_profiles_and_keys():
    assert M.DEFAULT_PROFILE == "canonical" == next(iter(M.PROFILES))
    assert M.profile_keys() == ("psnr", "ssim", "sam", "ergas", "rmse", "uiqi", "cc")
    x, y = _pair()
    for p in M.PROFILES:
        scores = M.evaluate(x, y, 4, profile=p)
        assert tuple(scores) == M.profile_keys(p)
        assert all(isinstance(v, float) for v in scores.values())
    with pytest.raises(InputError, match="unknown metric profile"):
        M.evaluate(x, y, 4, profile="nope")
    with pytest.raises(InputError, match="unknown metric profile"):
        M.profile_keys("nope")


def test_record_shape_and_crop():
    x, y = _pair()
    rec = M.evaluate_record(hmifbench.Cube(x.astype(np.float32)), y, 4, crop=2)
    assert rec["profile"] == "canonical" and rec["crop"] == 2 and rec["data_range"] == 1.0
    assert rec["scale"] == 4.0 and isinstance(rec["sam_excluded_pixels"], int)
    assert rec["metrics_version"] == M.METRICS_VERSION
    assert list(rec["scores"]) == list(M.profile_keys())
    cropped = M.evaluate(x[2:-2, 2:-2], y[2:-2, 2:-2], 4)
    direct = M.evaluate(x, y, 4, crop=2)
    for k in cropped:
        assert direct[k] == pytest.approx(cropped[k], rel=1e-12)


@pytest.mark.filterwarnings("error")
def test_identical_inputs_no_warnings():
    x, _ = _pair(dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = M.evaluate(x, x.copy(), 4)
        rec = M.evaluate_record(x, x.copy(), 4, profile="yokoya")
    assert s["psnr"] == math.inf and rec["scores"]["psnr"] == math.inf
    assert s["sam"] == 0.0 and s["ergas"] == 0.0 and s["rmse"] == 0.0
    assert s["ssim"] == 1.0 and s["uiqi"] == 1.0
    assert s["cc"] == pytest.approx(1.0, abs=1e-12)


def test_profiles_differ_in_documented_direction():
    x, y = _pair(bands=6)
    y = np.clip(y, 0.0, 1.0)          # already in [0, 1]: mossfuse's clip changes nothing
    can = M.evaluate(x, y, 4)
    mf = M.evaluate(x, y, 4, profile="mossfuse")
    yk = M.evaluate(x, y, 4, profile="yokoya")
    # mossfuse ERGAS: 100/32 instead of 100/4 and B + 1 instead of B
    assert mf["ergas"] == pytest.approx(can["ergas"] * (4 / 32) * math.sqrt(6 / 7), rel=1e-10)
    # sewar's UQI tends to 1: above the 32×32 Wang–Bovik Q
    assert mf["uiqi"] > can["uiqi"]
    assert mf["psnr"] == pytest.approx(can["psnr"], rel=1e-12)
    assert mf["sam"] == pytest.approx(can["sam"], rel=1e-6)
    # yokoya PSNR: peak max(X_b) < 1, so lower by mean_b 20·log10(1/max X_b)
    shift = np.mean(20 * np.log10(x.max(axis=(0, 1))))
    assert yk["psnr"] == pytest.approx(can["psnr"] + shift, rel=1e-12) and yk["psnr"] < can["psnr"]
    # yokoya ERGAS normalises by the estimate's band means: a brighter estimate lowers it
    brighter = x * 1.1
    assert (M.evaluate(x, brighter, 4, profile="yokoya")["ergas"]
            == pytest.approx(M.evaluate(x, brighter, 4)["ergas"] / 1.1, rel=1e-10))


def test_mossfuse_clips_estimate_and_sam_is_unguarded():
    x, y = _pair()
    y_out = y.copy()
    y_out[0, 0] = 1.7
    y_out[1, 1] = -0.4
    mf = M.evaluate(x, y_out, 4, profile="mossfuse")
    clipped = M.evaluate(x, np.clip(y_out, 0, 1), 4, profile="mossfuse")
    assert mf == clipped
    x0 = x.copy()
    x0[3, 3] = 0.0                    # a zero reference spectrum: MossFuse's SAM is NaN
    assert math.isnan(M.evaluate(x0, y, 4, profile="mossfuse")["sam"])
    assert math.isfinite(M.evaluate(x0, y, 4)["sam"])


def test_invariances():
    x, y = _pair()
    s = M.evaluate(x, y, 4)
    scaled = M.evaluate(3 * x, 3 * y, 4, data_range=3.0)
    for k in ("psnr", "ssim", "sam", "ergas", "uiqi", "cc"):
        assert scaled[k] == pytest.approx(s[k], rel=1e-9), k
    assert scaled["rmse"] == pytest.approx(3 * s["rmse"], rel=1e-12)
    # SAM ignores a per-pixel gain of the estimate
    gain = 0.5 + np.random.default_rng(2).random(x.shape[:2])[..., None]
    assert M.sam(x, y * gain) == pytest.approx(s["sam"], rel=1e-9)
    assert M.sam(x, 2 * x) == 0.0
    # ERGAS halves when the scale doubles
    assert M.ergas(x, y, 8) == pytest.approx(s["ergas"] / 2, rel=1e-12)


def test_float32_and_float64_agree():
    x, y = _pair()
    a = M.evaluate(x, y, 4)
    b = M.evaluate(x.astype(np.float32), y.astype(np.float32), 4)
    for k in a:
        assert b[k] == pytest.approx(a[k], rel=1e-5, abs=1e-6), k


def test_threads_do_not_change_results():
    x, y = _pair(dtype=np.float32)
    specs = {"ssim": M.full_reference.ssim_spec(1.0), "uiqi": M.full_reference.uiqi_spec(32)}
    one, m1 = _core.windowed_pass(x, y, specs, threads=1)
    two, m2 = _core.windowed_pass(x, y, specs, threads=3)
    for k in one:
        np.testing.assert_array_equal(one[k], two[k])
    np.testing.assert_array_equal(m1.mse, m2.mse)
    assert _core.spectral_angles(x, y, threads=1) == pytest.approx(_core.spectral_angles(x, y, threads=4))


# ---------------------------------------------------------------- bad inputs

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
    with pytest.raises(InputError, match="scale"):
        M.evaluate(x, y, 0)
    with pytest.raises(InputError, match="scale"):
        M.evaluate(x, y, "four")
    with pytest.raises(InputError, match="data_range"):
        M.evaluate(x, y, 4, data_range=0)
    with pytest.raises(InputError, match="crop"):
        M.evaluate(x, y, 4, crop=-1)
    with pytest.raises(InputError, match="crop"):
        M.evaluate(x, y, 4, crop=20)
    with pytest.raises(InputError, match="SSIM needs images of at least 11"):
        M.evaluate(x[:8, :8], y[:8, :8], 4)
    with pytest.raises(InputError, match="expected numbers"):
        M.psnr(x.astype(str), y)
    z = x.copy()
    z[..., 2] = 0.0
    with pytest.raises(InputError, match=r"ERGAS is undefined: band\(s\) \[2\]"):
        M.ergas(z, y, 4)


# ------------------------------------------------------------- worked example

def _doc_table():
    """Rows ``| profile | key | value |`` between the worked-example markers of docs/metrics.md."""
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- worked-example:start -->")[1].split("<!-- worked-example:end -->")[0]
    rows = re.findall(r"^\|\s*(\w+)\s*\|\s*(\w+)\s*\|\s*([-+0-9.e]+)\s*\|", block, flags=re.M)
    return [(p, k, float(v)) for p, k, v in rows]


def test_worked_example_in_docs_is_what_the_code_computes():
    rows = _doc_table()
    assert {p for p, _, _ in rows} == set(M.PROFILES)
    x, y = worked_example_pair()
    results = {p: M.evaluate(x, y, 4, profile=p) for p in M.PROFILES}
    assert len(rows) == sum(len(r) for r in results.values())
    for profile, key, value in rows:
        assert results[profile][key] == pytest.approx(value, abs=6e-7), (profile, key)


def _windowed_reference(x, y, w, c1, c2, cov_norm=1.0):
    """Per-band mean SSIM (c1, c2 > 0) or UIQI map, straight from the definitions: the five
    local moments filtered by scipy in float64, valid positions only."""
    from scipy import ndimage

    k = w.size
    lo = k // 2     # scipy centres a k-tap window on tap k//2

    def local_mean(a):
        full = ndimage.correlate1d(ndimage.correlate1d(a, w, axis=0), w, axis=1)
        return full[lo:lo + a.shape[0] - k + 1, lo:lo + a.shape[1] - k + 1]

    x = x.astype(np.float64)
    y = y.astype(np.float64)
    mx, my = local_mean(x), local_mean(y)
    vx = (local_mean(x * x) - mx * mx) * cov_norm
    vy = (local_mean(y * y) - my * my) * cov_norm
    cxy = (local_mean(x * y) - mx * my) * cov_norm
    q = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return q.mean(axis=(0, 1))


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 2e-6)])
def test_windowed_kernels_match_the_definition_across_blocks(dtype, tol):
    """Images taller than several row blocks (running sums restart at each block) and wider
    than a chunk of the Gaussian filter: the compiled loops give the textbook values."""
    from hmifbench.metrics._windows import box_kernel, gaussian_kernel

    x, y = _pair(rows=300, cols=400, bands=3, dtype=dtype)
    cases = {
        "gauss11": (_core.WindowSpec(gaussian_kernel(1.5), c1=1e-4, c2=9e-4), 1e-4, 9e-4, 1.0),
        "box7_sample": (_core.WindowSpec(box_kernel(7), c1=1e-4, c2=9e-4, cov_norm=49 / 48),
                        1e-4, 9e-4, 49 / 48),
        "uiqi32": (_core.WindowSpec(box_kernel(32)), 0.0, 0.0, 1.0),
    }
    got, _ = _core.windowed_pass(x, y, {name: spec for name, (spec, *_) in cases.items()},
                                 moments=False)
    for name, (spec, c1, c2, cov_norm) in cases.items():
        expected = _windowed_reference(x, y, spec.kernel, c1, c2, cov_norm)
        np.testing.assert_allclose(got[name], expected, atol=tol, err_msg=name)
