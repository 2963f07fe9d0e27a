"""Known-answer tests of the degradation protocols (docs/degradations.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from hmifbench import Cube
from hmifbench.datasets import PROTOCOLS, degrade, get_protocol
from hmifbench.datasets.protocols import misregister
from hmifbench.datasets.srf import SRF_TABLES, srf_for, srf_table
from hmifbench.errors import InputError

WL31 = np.arange(400.0, 701.0, 10.0)
CASI = np.linspace(374.4, 1047.1, 48)


def random_cube(shape, seed=0, wavelengths=None):
    x = np.random.default_rng(seed).uniform(0.05, 0.95, shape).astype(np.float32)
    wl = wavelengths if wavelengths is not None else np.linspace(400, 700, shape[2])
    return Cube(x, wl)


def moments(k):
    """Centre of mass and covariance of a kernel, in pixels from its centre (k - 1) // 2."""
    c = (np.array(k.shape) - 1) // 2
    r, q = np.meshgrid(np.arange(k.shape[0]) - c[0], np.arange(k.shape[1]) - c[1], indexing="ij")
    mean = np.array([(k * r).sum(), (k * q).sum()])
    dr, dq = r - mean[0], q - mean[1]
    cov = np.array([[(k * dr * dr).sum(), (k * dr * dq).sum()], [(k * dr * dq).sum(), (k * dq * dq).sum()]])
    return mean, cov


def truncated_sigma(sigma, half_width):
    """σ of a Gaussian truncated to |u| <= half_width + ½ (the kernel's extent)."""
    a = (half_width + 0.5) / sigma
    return sigma * math.sqrt(1 - 2 * a * norm.pdf(a) / (2 * norm.cdf(a) - 1))


# --------------------------------------------------------------------------- the grid

#: the protocols as they were before issue 4; their numbers must never change
FROZEN = {
    "mossfuse-x32": (32, {"kind": "gaussian", "size": 31, "sigma": 2.0}, None, None),
    "classic-box8": (8, {"kind": "box", "size": 8}, None, None),
    "gauss7s2-x4": (4, {"kind": "gaussian", "size": 7, "sigma": 2.0}, None, None),
    "gauss7s2-x8": (8, {"kind": "gaussian", "size": 7, "sigma": 2.0}, None, None),
    "gauss-fwhm-x4": (4, {"kind": "gaussian", "size": 13, "sigma": 1.698644}, None, None),
    "gauss-fwhm-x8": (8, {"kind": "gaussian", "size": 23, "sigma": 3.397287}, None, None),
    "gauss-fwhm-x16": (16, {"kind": "gaussian", "size": 43, "sigma": 6.794574}, None, None),
    "gauss-fwhm-x32": (32, {"kind": "gaussian", "size": 83, "sigma": 13.589149}, None, None),
    "noisy-35-40": (8, {"kind": "gaussian", "size": 23, "sigma": 3.397287}, 35, 40),
    "noisy-30-35": (8, {"kind": "gaussian", "size": 23, "sigma": 3.397287}, 30, 35),
}


@pytest.mark.parametrize("name", sorted(FROZEN))
def test_existing_protocols_keep_their_numbers(name):
    p = PROTOCOLS[name]
    scale, psf, snr_h, snr_m = FROZEN[name]
    assert (p.scale, p.psf, p.snr_hsi_db, p.snr_msi_db) == (scale, psf, snr_h, snr_m)
    assert (p.srf, p.offset, p.border, p.noise_per, p.version, p.misregistration) == (
        "nikon-d700", None, "reflect101", "band", 1, None)


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_every_psf_sums_to_one_and_is_centred(name):
    p = PROTOCOLS[name]
    k = p.kernel()
    assert k.min() >= 0 and k.sum() == pytest.approx(1.0, abs=1e-12)
    mean, _ = moments(k)
    if k.shape[0] % 2:                                     # odd kernels: exactly centred
        np.testing.assert_allclose(mean, 0, atol=1e-12)
    assert 0 <= p.decimation_offset < p.scale
    assert p.description


@pytest.mark.parametrize("name", sorted(n for n, p in PROTOCOLS.items()
                                        if p.psf["kind"] == "gaussian" and "sigma_y" not in p.psf))
def test_sigma_recovered_from_second_moment(name):
    p = PROTOCOLS[name]
    _, cov = moments(p.kernel())
    half = (p.psf["size"] - 1) // 2
    expected = truncated_sigma(p.psf["sigma"], half)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), expected, rtol=5e-3)
    assert abs(cov[0, 1]) < 1e-12


def test_mossfuse_psf_is_sigma_two_and_anisotropic_axes():
    _, cov = moments(PROTOCOLS["mossfuse-x32"].kernel())
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), 2.0, rtol=1e-4)   # 31 px = ±7.5σ: no truncation
    _, cov = moments(PROTOCOLS["aniso"].kernel())
    vals, vecs = np.linalg.eigh(cov)
    np.testing.assert_allclose(np.sqrt(vals), [2.25, 4.5], rtol=5e-3)
    major = vecs[:, 1] * np.sign(vecs[1, 1])                # (row, col) of the major axis
    # observation.gaussian_psf: σ along u = col·cos θ + row·sin θ, i.e. the direction (sin θ, cos θ).
    np.testing.assert_allclose(major, [math.sin(math.radians(30)), math.cos(math.radians(30))], atol=2e-3)


def test_box_psf_with_its_phase_is_the_block_mean():
    cube = random_cube((32, 24, 5), seed=1)
    pair = degrade(cube, "classic-box8")
    blocks = cube.data.astype(np.float64).reshape(4, 8, 3, 8, 5).mean(axis=(1, 3))
    np.testing.assert_allclose(pair.lr_hsi.data, blocks, atol=1e-6)
    assert pair.truth["offset"] == 3


def test_mossfuse_x32_samples_15_of_every_32():
    x = np.zeros((64, 96, 31), np.float32)
    x[15::32, 15::32, :] = 1.0                              # impulses exactly on the LR grid
    pair = degrade(Cube(x, WL31), "mossfuse-x32")
    peak = PROTOCOLS["mossfuse-x32"].kernel().max()
    assert pair.lr_hsi.shape == (2, 3, 31)
    np.testing.assert_allclose(pair.lr_hsi.data, peak, rtol=1e-5)
    x2 = np.zeros_like(x)
    x2[16::32, 15::32, :] = 1.0                             # one pixel off: a lower value
    assert degrade(Cube(x2, WL31), "mossfuse-x32").lr_hsi.data.max() < 0.9 * peak
    assert pair.truth["offset"] == 15 and pair.truth["scale"] == 32


def test_mossfuse_x32_equals_opencv():
    cv2 = pytest.importorskip("cv2")
    cube = random_cube((64, 64, 31), seed=2, wavelengths=WL31)
    pair = degrade(cube, "mossfuse-x32")
    # MossFuse test.py: cv2.GaussianBlur(hsi, (31, 31), 2) then [15::32, 15::32] (float64 here).
    ref = cv2.GaussianBlur(cube.data.astype(np.float64), (31, 31), 2)[15::32, 15::32]
    np.testing.assert_allclose(pair.lr_hsi.data, ref, atol=1e-6)
    k = cv2.getGaussianKernel(31, 2)
    np.testing.assert_allclose(pair.truth["psf"], k @ k.T, atol=1e-15)
    # HR-MSI: tensordot with resp = create_F counts divided by their row sums (255, 203, 251).
    counts = srf_table("nikon-d700")[1].T
    np.testing.assert_allclose(counts.sum(axis=1), [255, 203, 251])
    np.testing.assert_allclose(pair.hr_msi.data, np.tensordot(cube.data, (counts.T / counts.sum(1)), 1),
                               atol=1e-6)


# --------------------------------------------------------------------------- noise

def test_noise_snr_per_band_within_0_1_db():
    cube = random_cube((512, 512, 6), seed=3, wavelengths=np.linspace(420, 680, 6))
    p = {"name": "snr-check", "scale": 1, "psf": {"kind": "box", "size": 1}, "snr_hsi_db": 30.0,
         "snr_msi_db": 40.0}
    clean = degrade(cube, {**p, "snr_hsi_db": None, "snr_msi_db": None})
    noisy = degrade(cube, p, seed=11)
    for a, b, target in ((noisy.lr_hsi, clean.lr_hsi, 30.0), (noisy.hr_msi, clean.hr_msi, 40.0)):
        signal = np.sum(b.data.astype(np.float64) ** 2, axis=(0, 1))
        noise = np.sum((a.data.astype(np.float64) - b.data) ** 2, axis=(0, 1))
        np.testing.assert_allclose(10 * np.log10(signal / noise), target, atol=0.1)
    sigma = np.sqrt(np.mean(clean.lr_hsi.data.astype(np.float64) ** 2, axis=(0, 1))) * 10 ** (-30 / 20)
    np.testing.assert_allclose(noisy.truth["noise"]["hsi_sigma"], sigma, rtol=1e-6)


def test_noise_is_seeded_and_independent():
    cube = random_cube((32, 32, 31), seed=4, wavelengths=WL31)
    a, b, c = degrade(cube, "noisy-35-40", seed=5), degrade(cube, "noisy-35-40", seed=5), \
        degrade(cube, "noisy-35-40", seed=6)
    np.testing.assert_array_equal(a.lr_hsi.data, b.lr_hsi.data)
    np.testing.assert_array_equal(a.hr_msi.data, b.hr_msi.data)
    assert not np.array_equal(a.lr_hsi.data, c.lr_hsi.data)


# --------------------------------------------------------------------------- misregistration

def blob(shape, centre, sigma=4.0, bands=3):
    r, c = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    g = np.exp(-((r - centre[0]) ** 2 + (c - centre[1]) ** 2) / (2 * sigma**2))
    return np.repeat(g[:, :, None], bands, axis=2).astype(np.float32)


def centroid(img):
    r, c = np.meshgrid(np.arange(img.shape[0]), np.arange(img.shape[1]), indexing="ij")
    return np.array([(img * r).sum(), (img * c).sum()]) / img.sum()


@pytest.mark.parametrize("shift, angle", [((2.5, -1.25), 0.0), ((0.0, 0.0), 90.0), ((1.5, 0.75), 0.5)])
def test_misregistration_moves_content_as_documented(shift, angle):
    shape, q = (64, 64), np.array([24.0, 40.0])
    y = misregister(blob(shape, q), shift, angle, border="zero")
    centre = (np.array(shape) - 1) / 2
    t = math.radians(angle)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    expected = centre + rot @ (q - centre) + np.array(shift)
    np.testing.assert_allclose(centroid(y[:, :, 0]), expected, atol=0.02)


def test_misregistration_protocol_shift_recovered_at_lr():
    s = 8
    q = np.array([60.0, 70.0])
    x = blob((128, 128), q, sigma=10.0, bands=31)
    base = {"name": "m", "scale": s, "psf": PROTOCOLS["gauss-fwhm-x8"].psf, "border": "zero"}
    plain = degrade(Cube(x, WL31), base)
    moved = degrade(Cube(x, WL31), {**base, "misregistration": {"shift_lr": [0.5, -1.0], "rotation_deg": 0}})
    delta = centroid(moved.lr_hsi.data[:, :, 0]) - centroid(plain.lr_hsi.data[:, :, 0])
    np.testing.assert_allclose(delta, [0.5, -1.0], atol=0.02)
    np.testing.assert_array_equal(moved.hr_msi.data, plain.hr_msi.data)   # the MSI is not warped
    m = moved.truth["misregistration"]
    assert m["shift_lr"] == (0.5, -1.0) and m["shift_hr"] == (4.0, -8.0) and m["applied_to"] == "hsi"
    assert m["centre_hr"] == [63.5, 63.5] and m["order"] == 3


def test_misreg_protocols_and_bad_definitions(scene64):
    pair = degrade(scene64, "misreg-1", seed=0)
    assert pair.truth["misregistration"]["shift_hr"] == (8.0, 8.0)
    assert pair.truth["misregistration"]["rotation_deg"] == 0.5
    assert degrade(scene64, "gauss-fwhm-x8").truth["misregistration"] is None
    with pytest.raises(InputError, match="unknown keys"):
        get_protocol({"name": "x", "scale": 8, "psf": {"kind": "box"}, "misregistration": {"dx": 1}})
    with pytest.raises(InputError, match="two finite"):
        get_protocol({"name": "x", "scale": 8, "psf": {"kind": "box"}, "misregistration": {"shift_lr": [1]}})


# --------------------------------------------------------------------------- SRFs

@pytest.mark.parametrize("name", sorted(SRF_TABLES))
def test_srf_tables(name):
    nm, resp, bands = srf_table(name)
    assert np.all(np.diff(nm) > 0) and resp.min() >= 0 and resp.shape == (nm.size, len(bands))
    assert np.all(resp.max(axis=0) > 0)
    wl = WL31 if nm.max() <= 800 else CASI
    srf, covered = srf_for(name, wl)
    np.testing.assert_allclose(srf.sum(axis=1), 1.0, atol=1e-12)
    assert np.all((covered > 0) & (covered <= 1 + 1e-12))


def test_srf_coverage_recorded_and_logged(caplog):
    cube = random_cube((16, 16, 31), wavelengths=WL31)
    pair = degrade(cube, {"name": "t", "scale": 8, "psf": {"kind": "box"}, "srf": "nikon-d700-1nm"})
    cov = np.array(pair.truth["srf_coverage"])
    assert np.all(cov < 0.9) and np.all(cov > 0.3)            # the D700 curves extend past 700 nm
    assert "of its area inside" in caplog.text
    assert min(degrade(cube, "srf-nikon5100").truth["srf_coverage"]) > 0.99
    with pytest.raises(InputError, match="B8"):
        degrade(cube, {"name": "t", "scale": 8, "psf": {"kind": "box"}, "srf": "sentinel2a-10m"})


def test_table_a_and_b_differ_and_rs_protocols_run():
    a, _ = srf_for("nikon-d700-a", WL31)
    b, _ = srf_for("nikon-d700", WL31)
    assert np.abs(a - b).max() > 0.01
    np.testing.assert_array_equal(np.argmax(a, axis=1), [21, 15, 6])  # R 610, G 550, B 460 nm
    cube = random_cube((32, 32, 48), wavelengths=CASI)
    for name, bands in (("rs-s2-x4", 10), ("rs-l8-x4", 5), ("rs-ikonos-x4", 4)):
        pair = degrade(cube, name)
        assert pair.hr_msi.shape == (32, 32, bands) and pair.lr_hsi.shape == (8, 8, 48)


def test_every_protocol_is_documented():
    from pathlib import Path

    doc = Path(__file__).resolve().parent.parent / "docs" / "degradations.md"
    rows = {line.split("|")[1].strip().strip("`"): line.split("|")[2].strip()
            for line in doc.read_text().splitlines() if line.startswith("| `")}
    for name, p in PROTOCOLS.items():
        assert name in rows, f"{name} missing from docs/degradations.md"
        if rows[name].isdigit():
            assert int(rows[name]) == p.scale, name
