"""Tests of the no-reference (QNR), degradation-error and cost parts of hmifbench.metrics."""

import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from hmifbench import metrics as M
from hmifbench import observation as O
from hmifbench.errors import InputError


def _scene(rows=64, cols=64, bands=8, seed=0):
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.random((rows, cols, bands)), (2.5, 2.5, 1))
    x = (x - x.min()) / (x.max() - x.min()) * 0.8 + 0.1
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def consistent():
    x = _scene()
    psf = O.gaussian_psf(9, 4 / 2.3548)
    lr = O.spatial_degrade(x, psf, 4)
    srf = O.normalise_srf(np.random.default_rng(1).random((3, x.shape[2])))
    msi = O.spectral_degrade(x, srf)
    return x, lr, msi, psf


def test_metrics_import_without_torch():
    code = "import sys, hmifbench.metrics, hmifbench.metrics.cost; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_qnr_of_reference_consistent_fusion_is_near_one(consistent):
    x, lr, msi, psf = consistent
    r = M.qnr(x, lr, msi, 4, psf=psf)
    assert set(r) == {"d_lambda", "d_s", "qnr"}
    assert 0 <= r["d_lambda"] < 0.03 and 0 <= r["d_s"] < 0.03
    assert r["qnr"] == pytest.approx((1 - r["d_lambda"]) * (1 - r["d_s"]))
    assert r["qnr"] > 0.95
    # a noisy fusion loses spectral and spatial consistency
    noisy = np.clip(x + 0.05 * np.random.default_rng(2).standard_normal(x.shape), 0, 1)
    rn = M.qnr(noisy, lr, msi, 4, psf=psf)
    assert rn["qnr"] < r["qnr"] - 0.05
    assert rn["d_lambda"] > r["d_lambda"] and rn["d_s"] > r["d_s"]


def test_d_lambda_and_d_s_standalone(consistent):
    x, lr, msi, psf = consistent
    r = M.qnr(x, lr, msi, 4, psf=psf, p=2, q=2, alpha=0.5, beta=2)
    assert M.d_lambda(x, lr, p=2) == pytest.approx(r["d_lambda"])
    assert M.d_s(x, lr, msi, 4, psf=psf, q=2) == pytest.approx(r["d_s"])
    assert r["qnr"] == pytest.approx((1 - r["d_lambda"]) ** 0.5 * (1 - r["d_s"]) ** 2)
    # the default PSF is a one-LR-pixel-FWHM Gaussian like the simulated one (13×13 vs 9×9)
    assert M.d_s(x, lr, msi, 4) == pytest.approx(M.d_s(x, lr, msi, 4, psf=psf), abs=5e-3)


def test_qnr_bad_geometry(consistent):
    x, lr, msi, _ = consistent
    with pytest.raises(InputError, match="times scale"):
        M.qnr(x, lr, msi, 8)
    with pytest.raises(InputError, match="bands"):
        M.qnr(x[..., :5], lr, msi, 4)
    with pytest.raises(InputError, match="hr_msi"):
        M.qnr(x, lr, msi[:-4], 4)
    with pytest.raises(InputError, match="integer"):
        M.qnr(x, lr, msi, 4.5)


def test_psf_error():
    g = O.gaussian_psf(9, 1.5)
    same = M.psf_error(g, g)
    assert same["rmse"] == 0 and same["l1"] == 0 and same["sigma_error"] == 0
    assert same["sigma_true"] == pytest.approx(1.5, rel=0.02)
    # different support sizes are centre-aligned: a 15×15 kernel of the same Gaussian is
    # the 9×9 one plus a thin tail
    big = M.psf_error(O.gaussian_psf(15, 1.5), g)
    assert big["rmse"] < 1e-3 and big["centroid_shift"] < 1e-12
    narrow = M.psf_error(O.gaussian_psf(9, 1.0), g)
    assert narrow["sigma_error"] == pytest.approx(narrow["sigma_estimated"] - narrow["sigma_true"])
    assert -0.6 < narrow["sigma_error"] < -0.4
    # an unnormalised estimate is normalised first; a shifted one shows a centroid shift
    assert M.psf_error(3 * g, g)["rmse"] == pytest.approx(0, abs=1e-15)
    g15 = O.gaussian_psf(15, 1.5)
    shifted = np.zeros_like(g15)
    shifted[:, 1:] = g15[:, :-1]            # one pixel to the right (a 2e-5 tail dropped)
    assert M.psf_error(shifted, g15)["centroid_shift"] == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(InputError, match="positive sum"):
        M.psf_error(np.zeros((3, 3)), g)
    with pytest.raises(InputError, match="2-D"):
        M.psf_error(np.ones(3), g)


def test_srf_error():
    rng = np.random.default_rng(0)
    r = O.normalise_srf(rng.random((3, 10)))
    assert M.srf_error(2 * r, r)["rmse_mean"] == pytest.approx(0, abs=1e-15)
    e = r.copy()
    e[1] = np.roll(e[1], 2)
    e = O.normalise_srf(e)
    out = M.srf_error(e, r)
    assert out["rmse_per_band"][0] == 0 and out["rmse_per_band"][1] > 0
    assert out["sam_per_band_deg"][0] == 0 and out["sam_per_band_deg"][1] > 0
    assert out["sam_mean_deg"] == pytest.approx(np.mean(out["sam_per_band_deg"]))
    # unnormalised comparison keeps the gain
    assert M.srf_error(2 * r, r, normalise=False)["rmse"] > 0
    with pytest.raises(InputError, match="shape mismatch"):
        M.srf_error(r[:2], r)


def test_relative_frobenius_errors_of_psf_and_srf():
    g = O.gaussian_psf(9, 1.5)
    assert M.psf_error(3 * g, g)["rel_frobenius"] == pytest.approx(0, abs=1e-15)
    narrow = O.gaussian_psf(9, 1.2)
    expected = np.linalg.norm(narrow - g) / np.linalg.norm(g)
    assert M.psf_error(narrow, g)["rel_frobenius"] == pytest.approx(expected)
    # zero padding to a common support changes neither norm: a larger estimate of the same
    # kernel (its 9×9 centre and zeros around) scores the same as the 9×9 one
    padded = np.pad(narrow, 3)
    assert M.psf_error(padded, g)["rel_frobenius"] == pytest.approx(expected)
    rng = np.random.default_rng(1)
    r = O.normalise_srf(rng.random((3, 10)))
    e = O.normalise_srf(r + 0.1 * rng.random((3, 10)))
    assert M.srf_error(e, r)["rel_frobenius"] == pytest.approx(np.linalg.norm(e - r) / np.linalg.norm(r))
    assert M.srf_error(5 * r, r)["rel_frobenius"] == pytest.approx(0, abs=1e-15)


def test_cost_parameters_flops_timer():
    torch = pytest.importorskip("torch")
    from hmifbench.metrics import cost

    torch.set_num_threads(1)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8),
                              torch.nn.Conv2d(8, 4, 1, bias=False))
    net[2].weight.requires_grad_(False)
    p = cost.count_parameters(net)
    assert p["total"] == (3 * 8 * 9 + 8) + 16 + 32
    assert p["trainable"] == p["total"] - 32
    assert p["buffers"] == 8 + 8 + 1          # BN running mean, var, num_batches_tracked
    # conv 3→8, 3×3 on 10×10 → 8×8 outputs: 8·64·27 MACs; conv 1×1 8→4: 4·64·8 MACs
    f = cost.count_flops(net, torch.zeros(1, 3, 10, 10))
    assert f["macs"] == 8 * 64 * 27 + 4 * 64 * 8 and f["flops"] == 2 * f["macs"]
    t = cost.time_call(lambda: sum(range(100)), repeats=3, warmup=1)
    assert t["repeats"] == 3 and len(t["times_s"]) == 3 and t["median_s"] >= 0 and t["result"] == 4950
    with cost.Stopwatch() as sw:
        sum(range(100))
    assert sw.seconds >= 0
    assert cost.peak_rss_bytes() > 10 * 2 ** 20
    if not torch.cuda.is_available():
        assert cost.peak_gpu_memory() is None
