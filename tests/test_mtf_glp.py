"""MTF-GLP (additive), MTF-GLP-HPM and SFIM: quality against interpolation, exactness on scenes
the MRA model fits exactly, known/blind settings, parameters, bad input, determinism."""

from functools import lru_cache

import numpy as np
import pytest
from scipy import ndimage

from hmifbench.errors import InputError
from hmifbench.methods import FusionProblem, get
from hmifbench.methods.mtf_glp import MTFGLP, MTFGLPHPM, SFIM, mtf_gaussian
from hmifbench.metrics import psnr, sam
from hmifbench.observation import box_psf, gaussian_psf, spatial_degrade, spectral_degrade

METHODS = ["mtf_glp", "mtf_glp_hpm", "sfim"]


@lru_cache(maxsize=None)
def scene(size: int, seed: int = 0, bands: int = 31, n_materials: int = 6) -> np.ndarray:
    """A (size, size, bands) reflectance-like cube in [0, 1].

    Smooth spectra (three Gaussian bumps on a floor) mixed by abundance maps that are
    Gaussian-filtered noise (smooth transitions) plus sharp-edged discs and rectangles where one
    material dominates, times a mild fine-scale brightness texture.
    """
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, bands)
    spectra = []
    for _ in range(n_materials):
        c, w, a = rng.uniform(-0.2, 1.2, 3), rng.uniform(0.08, 0.35, 3), rng.uniform(0.1, 0.7, 3)
        spectra.append(0.05 + (a[:, None] * np.exp(-0.5 * ((t - c[:, None]) / w[:, None]) ** 2)).sum(0))
    spectra = np.array(spectra) * (0.9 / np.max(spectra))
    logits = ndimage.gaussian_filter(rng.standard_normal((size, size, n_materials)),
                                     (size / 10, size / 10, 0))
    logits /= logits.std()
    yy, xx = np.mgrid[:size, :size]
    for _ in range(6):
        m = rng.integers(n_materials)
        if rng.random() < 0.5:
            cy, cx = rng.uniform(0, size, 2)
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < rng.uniform(size / 12, size / 5) ** 2
        else:
            y0, x0 = rng.integers(0, size - size // 6, 2)
            hh, ww = rng.integers(size // 10, size // 3, 2)
            mask = (yy >= y0) & (yy < y0 + hh) & (xx >= x0) & (xx < x0 + ww)
        logits[mask, m] += 4.0
    abundances = np.exp(2.0 * logits)
    abundances /= abundances.sum(-1, keepdims=True)
    texture = 1 + 0.05 * ndimage.gaussian_filter(rng.standard_normal((size, size)), 1.0) / 0.28
    return np.clip((abundances @ spectra) * texture[..., None], 0, 1).astype(np.float32)


def three_bump_srf(bands: int = 31) -> np.ndarray:
    t = np.linspace(0, 1, bands)
    r = np.exp(-0.5 * ((t[None] - np.array([0.2, 0.5, 0.8])[:, None]) / 0.12) ** 2)
    return r / r.sum(1, keepdims=True)


def simulate(x, scale, psf):
    srf = three_bump_srf(x.shape[2])
    return spatial_degrade(x, psf, scale), spectral_degrade(x, srf), srf


def gaussian(scale, widen=1.25):
    """A Gaussian PSF wider than fwhm_gaussian_psf, so the blind setting differs from the known one."""
    sigma = widen * scale / 2.3548
    return gaussian_psf(2 * int(np.ceil(3 * sigma)) + 1, sigma)


@pytest.mark.parametrize("known", [True, False])
@pytest.mark.parametrize("scale,size", [(4, 64), (8, 128)])
@pytest.mark.parametrize("name", METHODS)
def test_beats_bicubic_upsampling(name, scale, size, known):
    x = scene(size)
    psf = gaussian(scale)
    yh, ym, srf = simulate(x, scale, psf)
    problem = FusionProblem(yh, ym, scale, psf=psf if known else None, srf=srf if known else None)
    base = get("upsample").fuse(problem).hr_hsi
    out = get(name).fuse(problem).hr_hsi
    assert out.shape == x.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert psnr(x, out) > psnr(x, base) + 3.0
    assert sam(x, out) < sam(x, base)


@pytest.mark.parametrize("name", METHODS)
def test_band_assignment_variant_beats_upsampling(name):
    x = scene(64, seed=1)
    yh, ym, srf = simulate(x, 4, gaussian(4))
    problem = FusionProblem(yh, ym, 4)
    fused = get(name, detail_source="band_assignment").fuse(problem)
    assert len(fused.extras["band_groups"]) == x.shape[2]
    assert psnr(x, fused.hr_hsi) > psnr(x, get("upsample").fuse(problem).hr_hsi) + 2.0


def affine_scene(size, scale, seed=3):
    """A scene whose HSI bands are exact non-negative affine combinations of its MSI bands: the
    hypersharpening model then holds exactly (X_k = Σ_j w_kj M_j + c_k)."""
    rng = np.random.default_rng(seed)
    msi = ndimage.gaussian_filter(rng.random((size, size, 3)), (1.0, 1.0, 0)) * 0.8 + 0.1
    msi[size // 4: size // 2, size // 3: 2 * size // 3] *= 0.5  # sharp edges
    weights = rng.uniform(0.0, 1.0, (3, 31))
    weights /= weights.sum(0)
    x = (msi.reshape(-1, 3) @ weights + rng.uniform(0.0, 0.05, 31)).reshape(size, size, 31)
    return x.astype(np.float32), msi.astype(np.float32)


@pytest.mark.parametrize("name,kernel", [("mtf_glp", "gauss"), ("mtf_glp_hpm", "gauss"),
                                         ("sfim", "box")])
def test_exact_when_the_mra_model_holds(name, kernel):
    """With the pyramid's low-pass equal to the true PSF and X affine in the MSI, the injected
    detail is exactly what the blur removed: Ỹ = P_L, so X̂ = Ỹ + (P − P_L) = P = X (additive)
    and X̂ = Ỹ·P/P_L = P = X (HPM). Any misalignment between the decimation phase, the
    interpolator and the low-pass filter breaks this."""
    scale = 4
    x, msi = affine_scene(64, scale)
    psf = gaussian(scale) if kernel == "gauss" else box_psf(scale)
    problem = FusionProblem(spatial_degrade(x, psf, scale), msi, scale, psf=psf)
    out = get(name).fuse(problem).hr_hsi
    assert psnr(x, out) > 70.0


def test_known_setting_uses_the_psf():
    x = scene(64)
    psf = gaussian(4, widen=1.6)
    yh, ym, srf = simulate(x, 4, psf)
    known = get("mtf_glp").fuse(FusionProblem(yh, ym, 4, psf=psf, srf=srf))
    blind = get("mtf_glp").fuse(FusionProblem(yh, ym, 4))
    ignore = get("mtf_glp", use_psf=False).fuse(FusionProblem(yh, ym, 4, psf=psf, srf=srf))
    assert known.extras["lowpass"] == "problem psf"
    assert blind.extras["lowpass"].startswith("fwhm_gaussian_psf")
    np.testing.assert_array_equal(blind.hr_hsi, ignore.hr_hsi)
    assert psnr(x, known.hr_hsi) > psnr(x, blind.hr_hsi)


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("gnyq", [0.2, 0.3, 0.5])
def test_mtf_gaussian_has_the_requested_nyquist_gain(scale, gnyq):
    kernel = mtf_gaussian(scale, gnyq)
    assert kernel.shape[0] % 2 == 1 and abs(kernel.sum() - 1) < 1e-12
    profile = kernel.sum(axis=0)  # separable: the 1-D response along columns
    k = np.arange(profile.size) - (profile.size - 1) // 2
    gain = float(np.abs(np.sum(profile * np.exp(-2j * np.pi * k / (2 * scale)))))
    assert gain == pytest.approx(gnyq, rel=0.03)


def test_gnyq_parameter_changes_the_blind_filter():
    x = scene(64)
    yh, ym, _ = simulate(x, 4, gaussian(4))
    fused = get("mtf_glp_hpm", gnyq=0.3).fuse(FusionProblem(yh, ym, 4))
    assert fused.extras["lowpass"] == "Gaussian, GNyq=0.3"


def test_metadata():
    for cls in (MTFGLP, MTFGLPHPM, SFIM):
        d = cls.describe()
        assert d["blind"] is True and d["needs_psf"] is False and d["needs_srf"] is False
        assert d["family"] == "linear" and d["citation"]
        assert all(p["doc"] for p in d["params"].values())
    assert get("mtf_glp").name == "mtf_glp" and get("sfim").name == "sfim"
    assert MTFGLP.describe()["params"]["regression"]["default"] == "ls"
    assert SFIM.describe()["params"]["regression"]["default"] == "nnls"


@pytest.mark.parametrize("name,params,word", [
    ("mtf_glp", {"gnyq": 1.5}, "gnyq"),
    ("mtf_glp_hpm", {"gnyq": 0.0}, "gnyq"),
    ("mtf_glp", {"detail_source": "pca"}, "detail_source"),
    ("sfim", {"regression": "ridge"}, "regression"),
    ("sfim", {"gnyq": 0.3}, "gnyq"),  # SFIM has no MTF parameter
    ("mtf_glp", {"use_psf": "yes"}, "use_psf"),
])
def test_bad_parameters_are_named(name, params, word):
    with pytest.raises(InputError, match=word):
        get(name, **params)


def test_bad_inputs_raise_input_errors():
    x = scene(64)
    yh, ym, srf = simulate(x, 4, gaussian(4))
    method = get("mtf_glp")
    with pytest.raises(InputError, match="columns"):
        method.fuse(FusionProblem(yh[..., :30], ym, 4, srf=srf))
    with pytest.raises(InputError, match="scale"):
        method.fuse(FusionProblem(yh, ym[:-2], 4))
    bad = yh.copy()
    bad[3, 3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        method.fuse(FusionProblem(bad, ym, 4))
    with pytest.raises(InputError, match="scale 3"):  # 64 is not 3 × 16
        method.fuse(FusionProblem(yh, ym, 3))
    with pytest.raises(InputError, match="scale"):
        method.fuse(FusionProblem(yh, ym, 0))


@pytest.mark.parametrize("name", METHODS)
def test_deterministic(name):
    x = scene(64, seed=2)
    yh, ym, _ = simulate(x, 4, gaussian(4))
    problem = FusionProblem(yh, ym, 4)
    a = get(name).fuse(problem, seed=0).hr_hsi
    b = get(name).fuse(problem, seed=0).hr_hsi
    np.testing.assert_array_equal(a, b)
