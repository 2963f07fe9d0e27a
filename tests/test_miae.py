"""Tests of the MIAE reimplementation (methods/miae): parameter counts, the degradation modules
and their conventions, the batching rule and its fix, the schedule and loss, a toy the model
represents exactly, the method API (known/blind, determinism, resume, device). Tiny images,
few steps."""

from __future__ import annotations


import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hmifbench import methods  # noqa: E402
from hmifbench.errors import InputError  # noqa: E402
from hmifbench.methods import FusionProblem, _deep  # noqa: E402
from hmifbench.methods.miae import network as N  # noqa: E402
from hmifbench.observation import (fwhm_gaussian_psf, gaussian_psf, spatial_degrade,  # noqa: E402
                                   spectral_degrade)

torch.set_num_threads(1)

TINY = dict(iterations=6, blind_iterations=4, width=8, batching="full", record_every=2)


def gaussian_srf(msi_bands=3, bands=31):
    j = np.arange(bands)
    rows = [np.exp(-0.5 * ((j - c) / 4.0) ** 2) for c in np.linspace(4, bands - 5, msi_bands)]
    srf = np.stack(rows)
    return srf / srf.sum(axis=1, keepdims=True)


def low_rank_scene(size, bands=31, endmembers=3, seed=0, smooth=1.5):
    """X = A·E: ``endmembers`` smooth spectra mixed by blurred random abundances."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, bands)
    spectra = np.stack([0.15 + 0.7 * np.exp(-0.5 * ((t - c) / 0.25) ** 2)
                        for c in rng.uniform(0, 1, endmembers)])
    maps = ndimage.gaussian_filter(rng.random((size, size, endmembers)), (smooth, smooth, 0),
                                   mode="wrap")
    maps /= maps.sum(-1, keepdims=True)
    return (maps @ spectra).astype(np.float32)


def known_problem(x, scale, psf=None, srf=None):
    psf = fwhm_gaussian_psf(scale) if psf is None else psf
    srf = gaussian_srf(bands=x.shape[2]) if srf is None else srf
    return FusionProblem(spatial_degrade(x, psf, scale), spectral_degrade(x, srf), scale,
                         psf=psf, srf=srf)


def psnr(a, b):
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, float) - b) ** 2)))


# ------------------------------------------------------------------------ metadata, params

def test_metadata_and_the_papers_defaults():
    cls = methods.get_class("miae")
    assert (cls.family, cls.training, cls.blind, cls.resources.gpu) == ("deep", "none", True, 1)
    assert "10.1109/TGRS.2022.3143156" in cls.citation
    p = methods.get("miae").params
    assert (p.iterations, p.lr, p.weight_decay, p.lr_flat_fraction) == (10000, 5e-3, 1e-3, 0.1)
    assert (p.width, p.stages, p.negative_slope) == (80, 3, 0.2)
    assert (p.batching, p.patch_size, p.patch_stride, p.batch_size) == ("patches", 5, 3, 0)
    assert (p.blind_iterations, p.blind_lr, p.use_known) == (5000, 5e-5, True)


@pytest.mark.parametrize("bad", [dict(iterations=0), dict(blind_iterations=-1), dict(lr=0.0),
                                 dict(blind_lr=float("nan")), dict(weight_decay=-1.0),
                                 dict(lr_flat_fraction=1.5), dict(width=0), dict(stages=0),
                                 dict(batching="tiles"), dict(batch_size=-2),
                                 dict(patch_stride=0), dict(nonsense=1)])
def test_bad_parameters_are_refused(bad):
    with pytest.raises(InputError):
        methods.get("miae", **bad)


def test_parameter_count_matches_the_published_model():
    """76,240 for L = 31, l = 3, P = 80, T = 3 and 12,090 for P = 30 (the published model, counted);
    BlindNet (2s−1)² + lL = 318 at ×8."""
    assert _deep.count_parameters(N.AENet(31, 3, 80, 3)) == 76240
    assert _deep.count_parameters(N.AENet(31, 3, 30, 3)) == 12090
    blind = N.BlindNet(N.CentredPSF(8), N.LearnedSRF(3, 31))
    assert _deep.count_parameters(blind) == 318


def test_fused_n_params_is_the_papers_count_in_the_known_setting():
    problem = known_problem(low_rank_scene(16), 4)
    fused = methods.get("miae", iterations=1, batching="full").fuse(problem, device="cpu")
    assert fused.n_params == 76240 and fused.psf is None and fused.srf is None
    assert fused.extras["batching"]["blind_iterations"] == 0  # nothing to learn


def test_aenet_initialisation_and_output_range():
    torch.manual_seed(0)
    net = N.AENet(31, 3, 80, 3)
    torch.testing.assert_close(net.endmembers, torch.full((31, 80), 1 / 80))
    for layer in [net.hsi_in, net.hsi_mid, net.msi_in, net.fuse_in, *net.update, *net.merge]:
        w = layer.weight.detach()
        assert (layer.bias == 0).all() and w.abs().max() <= 2.0
        assert w.std().item() == pytest.approx(np.sqrt(1 / w.shape[1]), rel=0.15)
    assert len(net.update) == len(net.merge) == 2
    out = net(torch.rand(50, 31) * 3 - 1, torch.rand(50, 3) * 3 - 1)
    assert out.shape == (50, 31) and out.min() >= 0 and out.max() <= 1


# ------------------------------------------------------------------------ degradations

def test_centred_psf_is_the_codes_sampling_and_is_reported_in_the_suites_convention():
    """LR[i, j] = Σ k[a, b] X[s·i + a − (s−1), s·j + b − (s−1)] (zero outside); the kernel
    placed by centred_kernel_as_psf gives the same LR image through the suite's operator."""
    rng = np.random.default_rng(1)
    scale = 4
    x = rng.random((6 * scale, 6 * scale, 2)).astype(np.float32)
    psf = N.CentredPSF(scale)
    with torch.no_grad():
        psf.kernel.copy_(torch.rand(2 * scale - 1, 2 * scale - 1))
        psf.kernel /= psf.kernel.sum()
    got = psf(_deep.to_nchw(x, "cpu"))[0].permute(1, 2, 0).detach().numpy()
    k = psf.kernel.detach().double().numpy()
    padded = np.pad(x, ((scale - 1, scale - 1), (scale - 1, scale - 1), (0, 0)))
    i, j = 2, 5
    window = padded[scale * i: scale * i + 2 * scale - 1, scale * j: scale * j + 2 * scale - 1]
    np.testing.assert_allclose(got[i, j], np.einsum("ab,abc->c", k, window), rtol=1e-5)
    for offset in (0, 1, 3):
        suite = N.centred_kernel_as_psf(k, scale, offset)
        expected = spatial_degrade(x, suite, scale, offset=offset, border="zero")
        # The suite's sample s·i + offset with its kernel equals MIAE's sample s·i.
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_known_psf_layer_is_the_suites_spatial_degradation():
    rng = np.random.default_rng(2)
    x = rng.random((32, 32, 3)).astype(np.float32)
    psf = fwhm_gaussian_psf(8)
    layer = N.KnownPSF(psf, 8, 3, "reflect101")
    got = layer(_deep.to_nchw(x, "cpu"))[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, spatial_degrade(x, psf, 8, 3, "reflect101"), atol=1e-5)


def test_border_crop_keeps_exactly_the_pixels_a_patch_determines():
    """b = 1 for MIAE's kernel (the code's value) and for gauss-fwhm-x8 on 5×5 patches; after
    the crop the known operator on a patch equals the full image's LR pixels."""
    assert N.border_crop(N.CentredPSF(8).reach(), 8, 5) == 1
    layer = N.KnownPSF(fwhm_gaussian_psf(8), 8, 3, "reflect101")  # 23×23, centre 11
    assert layer.reach() == (8, 14)
    b = N.border_crop(layer.reach(), 8, 5)
    assert b == 1
    x = torch.rand(1, 2, 80, 80)
    full = layer(x)
    patch = layer(x[:, :, 16:56, 24:64])  # LR origin (2, 3), 5×5 LR pixels
    torch.testing.assert_close(patch[..., b:-b, b:-b], full[..., 2 + b:7 - b, 3 + b:8 - b])
    assert not torch.allclose(patch[..., :b, :], full[..., 2:2 + b, 3:8])  # the crop is needed


def test_blind_step_projects_and_lowers_its_loss():
    """After each step the PSF lies in [0, 1] summing to 1 and R's rows sum to 1; on a textured
    toy whose PSF the centred kernel represents, the LR-MSI consistency loss falls."""
    scale = 4
    x = low_rank_scene(32, endmembers=6, smooth=0.7, seed=3)
    true = gaussian_psf(2 * scale - 1, 1.2)
    lr = spatial_degrade(x, N.centred_kernel_as_psf(true, scale, 1), scale, 1, border="zero")
    problem = FusionProblem(lr, spectral_degrade(x, gaussian_srf()), scale)
    p = methods.get("miae", blind_iterations=300, blind_lr=5e-3, iterations=1,
                    batching="full", record_every=50).params
    model, info, _ = N.train(problem, problem.hr_msi, p, seed=0, device=torch.device("cpu"),
                             progress=None, checkpoint=None, learn_psf=True, learn_srf=True)
    k = model.blind.psf.kernel.detach()
    r = model.blind.srf.matrix().detach()
    assert k.min() >= 0 and k.max() <= 1 and float(k.sum()) == pytest.approx(1, abs=1e-5)
    assert r.min() >= 0 and torch.allclose(r.sum(1), torch.ones(3))
    curve = info["convergence"]["blind_loss"]
    assert curve[-1] < 0.5 * curve[0], curve


# ------------------------------------------------------------------------ batching, schedule, loss

def test_batch_rule_and_its_cap():
    """512² ×8: 20 × 20 = 400 patches, the code's batch 25·1·2 = 50; 512² ×32: 16 patches
    against the code's 200 (no batch with drop_last: an endless loop), capped to 16; 64² ×8:
    the code's batch 0, capped up to 1."""
    plan = N.batch_plan(512, 512, 8, 5, 3)
    assert (plan["patches"], plan["rule"], plan["batch"], plan["batches_per_epoch"]) == (400, 50, 50, 8)
    plan = N.batch_plan(512, 512, 32, 5, 3)
    assert (plan["patches"], plan["rule"], plan["batch"], plan["batches_per_epoch"]) == (16, 200, 16, 1)
    plan = N.batch_plan(64, 64, 8, 5, 3)
    assert (plan["patches"], plan["rule"], plan["batch"]) == (4, 0, 1)
    assert N.batch_plan(256, 256, 4, 5, 3, batch_size=7)["batch"] == 7


def test_a_512_image_at_x32_terminates_on_patches():
    """The released rule never ends here; the capped batch trains (tiny network, 3 steps)."""
    rng = np.random.default_rng(0)
    x = rng.random((512, 512, 4)).astype(np.float32)
    srf = np.array([[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    problem = FusionProblem(spatial_degrade(x, np.ones((32, 32)) / 1024, 32),
                            spectral_degrade(x, srf), 32, psf=np.ones((32, 32)) / 1024, srf=srf)
    fused = methods.get("miae", iterations=3, width=2, stages=1, record_every=1).fuse(
        problem, device="cpu")
    batching = fused.extras["batching"]
    assert (batching["mode"], batching["rule"], batching["batch"], batching["patches"]) == (
        "patches", 200, 16, 16)
    assert fused.iterations == 3 and fused.hr_hsi.shape == (512, 512, 4)


def test_epochs_shuffle_reproducibly_and_cover_every_patch():
    a, b = N.epoch_order(10, 3, 0), N.epoch_order(10, 3, 0)
    assert torch.equal(a, b) and sorted(a.tolist()) == list(range(10))
    assert not torch.equal(a, N.epoch_order(10, 3, 1))


def test_learning_rate_factor_is_the_codes():
    f = [N.learning_rate_factor(t, 10000, 1000) for t in (0, 998, 999, 1000, 5499, 9999)]
    assert f[:2] == [1.0, 1.0]
    np.testing.assert_allclose(f[2:], [1 - 0 / 9000, 1 - 1 / 9000, 1 - 4500 / 9000, 0.0])
    assert N.learning_rate_factor(3, 5, 5) == 1.0


def test_loss_is_the_sum_of_absolute_errors_on_the_full_image():
    """h·w·Σ_bands mean = Σ over the LR-HSI and H·W·Σ_bands mean = Σ over the MSI (no crop);
    on a patch the weights stay the full image's h·w and H·W."""
    problem = known_problem(low_rank_scene(16), 4)
    model = N.Model(problem, methods.get("miae", width=8).params, False, False)
    data = N.Data(problem, problem.hr_msi, "cpu")
    loss = N.reconstruction_loss(model, data.lr, data.up, data.msi, 0, 16, 16, 4)
    with torch.no_grad():
        x_hat = model.aenet(N.channels_last(data.up), N.channels_last(data.msi))
        lr_hat = model.blind.psf(N.channels_first(x_hat))
        expected = ((lr_hat - data.lr).abs().sum()
                    + (x_hat @ model.blind.srf.matrix().T - N.channels_last(data.msi)).abs().sum())
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    patch_loss = N.reconstruction_loss(model, *data.batch([(0, 0)], 2), 0, 16, 16, 4).detach()
    with torch.no_grad():
        lr, up, msi = data.batch([(0, 0)], 2)
        x_hat = model.aenet(N.channels_last(up), N.channels_last(msi))
        hsi_mean = (model.blind.psf(N.channels_first(x_hat)) - lr).abs().mean(dim=(0, 2, 3)).sum()
        msi_mean = (x_hat @ model.blind.srf.matrix().T - N.channels_last(msi)).abs().mean(
            dim=(0, 1, 2)).sum()
    assert float(patch_loss) == pytest.approx(float(16 * hsi_mean + 256 * msi_mean), rel=1e-5)


# ------------------------------------------------------------------------ learning

@pytest.mark.slow  # ~5 CPU s
def test_low_rank_toy_in_the_known_setting_beats_bicubic():
    """Noiseless 3-endmember data: X is a linear function of the MSI pixel, which AENet
    represents exactly (E holds the spectra, S the abundances). From E's uniform start (every
    output spectrum flat) the loss stays on a plateau for ~300 steps, then falls."""
    x = low_rank_scene(32, seed=0)
    problem = known_problem(x, 4)
    fused = methods.get("miae", iterations=800, width=16, batching="full",
                        record_every=100).fuse(problem, device="cpu")
    bicubic = methods.get("upsample").fuse(problem).hr_hsi
    curve = fused.extras["convergence"]["loss"]
    assert curve[-1] < 0.5 * curve[0], curve  # measured: 43.1 → 11.2
    # measured: 46.9 dB against 41.9 dB
    assert psnr(fused.hr_hsi, x) > psnr(bicubic, x) + 3, (psnr(fused.hr_hsi, x), psnr(bicubic, x))


# ------------------------------------------------------------------------ method API

def _small_problem(known=False):
    p = known_problem(low_rank_scene(16, seed=2), 4)
    return p if known else p.blind()


def test_fuse_is_bitwise_deterministic_and_reports_its_estimates():
    seen = []
    method = methods.get("miae", **TINY)
    a = method.fuse(_small_problem(), seed=3, device="cpu",
                    progress=lambda done, total, losses: seen.append((done, total)))
    b = method.fuse(_small_problem(), seed=3, device="cpu")
    np.testing.assert_array_equal(a.hr_hsi, b.hr_hsi)
    assert a.extras["convergence"] == b.extras["convergence"]
    assert seen == [(t, 10) for t in range(1, 11)]
    assert a.iterations == 10 and a.extras["learned"] == {"psf": True, "srf": True}
    assert a.n_params == _deep.count_parameters(N.AENet(31, 3, 8, 3)) + 7 * 7 + 3 * 31
    assert a.extras["convergence"]["iteration"] == [2, 4, 6, 8, 10]
    assert len(a.extras["convergence"]["blind_loss"]) == 2
    assert a.psf.shape[0] % 2 == 1 and a.psf.sum() == pytest.approx(1, abs=1e-5)
    np.testing.assert_allclose(a.srf.sum(axis=1), 1.0, rtol=1e-5)
    assert 0 <= a.hr_hsi.min() and a.hr_hsi.max() <= 1
    c = method.fuse(_small_problem(), seed=4, device="cpu")
    assert not np.array_equal(a.hr_hsi, c.hr_hsi)


def test_patch_training_is_deterministic():
    problem = known_problem(low_rank_scene(32, seed=1), 4)
    params = dict(iterations=4, width=4, batch_size=2, record_every=1)
    a = methods.get("miae", **params).fuse(problem, seed=1, device="cpu")
    b = methods.get("miae", **params).fuse(problem, seed=1, device="cpu")
    np.testing.assert_array_equal(a.hr_hsi, b.hr_hsi)
    # fwhm_gaussian_psf(4) is 13×13 on HR pixel 4·i + 1: it reaches 5 pixels back, 7 ahead
    assert a.extras["batching"]["batch"] == 2 and a.extras["batching"]["border_crop"] == 2


def test_use_known_false_learns_both_in_the_known_setting():
    fused = methods.get("miae", use_known=False, **TINY).fuse(_small_problem(known=True),
                                                              device="cpu")
    assert fused.extras["learned"] == {"psf": True, "srf": True}
    assert fused.extras["batching"]["blind_iterations"] == 4


def test_known_srf_with_radiometry_corrects_the_msi():
    x = low_rank_scene(16, seed=2)
    plain = known_problem(x, 4)
    gain, offset = np.array([0.8, 1.2, 1.1]), np.array([0.01, -0.02, 0.03])
    shifted = FusionProblem(plain.lr_hsi, plain.hr_msi * gain + offset, 4, psf=plain.psf,
                            srf=plain.srf, msi_gain=gain, msi_offset=offset)
    params = dict(iterations=3, width=4, batching="full")
    a = methods.get("miae", **params).fuse(plain, device="cpu").hr_hsi
    b = methods.get("miae", **params).fuse(shifted, device="cpu").hr_hsi
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_patches_larger_than_the_image_are_refused():
    with pytest.raises(InputError, match="smaller than one patch"):
        methods.get("miae", iterations=1).fuse(_small_problem(known=True), device="cpu")


def test_a_psf_wider_than_a_patch_is_refused():
    problem = known_problem(low_rank_scene(32, seed=1), 4, psf=gaussian_psf(31, 3.0))
    with pytest.raises(InputError, match="reaches across a whole patch"):
        methods.get("miae", iterations=1, width=4).fuse(problem, device="cpu")


def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    params = dict(TINY, checkpoint_dir=str(tmp_path), checkpoint_every=3)
    reference = methods.get("miae", **TINY).fuse(_small_problem(), device="cpu")

    def stop(done, total, losses):
        if done == 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        methods.get("miae", **params).fuse(_small_problem(), device="cpu", progress=stop)
    resumed = methods.get("miae", **params).fuse(_small_problem(), device="cpu")
    assert resumed.extras["resumed_from"] == 6
    np.testing.assert_array_equal(resumed.hr_hsi, reference.hr_hsi)
    assert resumed.extras["convergence"] == reference.extras["convergence"]


def test_auto_device_is_resolved_to_cuda_when_visible(monkeypatch):
    """fuse passes ``device`` to the shared resolver, which picks CUDA when torch sees it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _deep.resolve_device("auto").type == "cuda"
    asked = []
    real = _deep.resolve_device

    def spy(device):
        asked.append((device, real(device).type))
        return torch.device("cpu")

    monkeypatch.setattr(_deep, "resolve_device", spy)
    fused = methods.get("miae", **TINY).fuse(_small_problem(known=True))
    assert asked == [("auto", "cuda")] and fused.extras["device"] == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda():
    fused = methods.get("miae", **TINY).fuse(_small_problem(), device="auto")
    assert fused.extras["device"].startswith("cuda") and np.isfinite(fused.hr_hsi).all()


def test_conformance_checks():
    from hmifbench.testing import check_method

    check_method("miae")
