"""Tests of the GDD reimplementation (methods/gdd): parameter count with shared modules, the
padding to a multiple of 32, the loss on a ×32 box-PSF toy, backtracking, the method API
(known/blind, determinism, progress, resume, device choice). Small images, few steps."""

from __future__ import annotations

import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hmifbench import methods  # noqa: E402
from hmifbench.errors import InputError  # noqa: E402
from hmifbench.methods import FusionProblem  # noqa: E402
from hmifbench.methods._deep import count_parameters  # noqa: E402
from hmifbench.methods.gdd import network as N  # noqa: E402
from hmifbench.observation import gaussian_psf, spatial_degrade, spectral_degrade  # noqa: E402

torch.set_num_threads(1)

TINY = dict(iterations=4, width=8, record_every=2)


def srf_matrix(msi_bands=3, bands=31):
    """Gaussian responses spread over the bands, rows summing to 1."""
    j = np.arange(bands)
    rows = [np.exp(-0.5 * ((j - c) / (bands / 6)) ** 2)
            for c in np.linspace(bands / 6, 5 * bands / 6, msi_bands)]
    srf = np.array(rows)
    return srf / srf.sum(axis=1, keepdims=True)


def smooth_scene(rows, cols=None, bands=31, seed=0):
    """A low-rank scene: 3 spectra mixed by smooth abundance maps."""
    from scipy import ndimage

    cols = rows if cols is None else cols
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, bands)
    spectra = np.stack([0.15 + 0.7 * np.exp(-0.5 * ((t - c) / 0.25) ** 2)
                        for c in rng.uniform(0, 1, 3)])
    maps = ndimage.gaussian_filter(rng.random((rows, cols, 3)), (2, 2, 0), mode="wrap")
    maps /= maps.sum(-1, keepdims=True)
    return (maps @ spectra).astype(np.float32)


def known_problem(x, scale, psf=None, msi_bands=3):
    psf = gaussian_psf(2 * scale - 1, scale / 2.3548) if psf is None else psf
    srf = srf_matrix(msi_bands, x.shape[2])
    return FusionProblem(spatial_degrade(x, psf, scale), spectral_degrade(x, srf), scale,
                         psf=psf, srf=srf)


# ------------------------------------------------------------------------ metadata, params

def test_metadata_and_the_papers_defaults():
    cls = methods.get_class("gdd")
    assert (cls.family, cls.training, cls.blind, cls.resources.gpu) == ("deep", "none", True, 1)
    assert "arXiv:2007.11766" in cls.citation
    p = methods.get("gdd").params
    assert (p.iterations, p.lr, p.width, p.hsi_weight, p.code_init_max, p.code_noise_std,
            p.negative_slope) == (20001, 0.01, 64, 0.1, 0.1, 0.03, 0.2)
    assert (p.backtrack, p.backtrack_start, p.backtrack_threshold) == (True, 1000, 1e-5)


@pytest.mark.parametrize("bad", [dict(iterations=0), dict(width=0), dict(lr=0.0),
                                 dict(code_init_max=-1.0), dict(code_noise_std=-0.1),
                                 dict(hsi_weight=float("nan")), dict(negative_slope=1.0),
                                 dict(backtrack_start=-1), dict(record_every=0),
                                 dict(nonsense=1)])
def test_bad_parameters_are_refused(bad):
    with pytest.raises(InputError):
        methods.get("gdd", **bad)


def test_parameter_count_of_the_published_network_with_shared_modules():
    """245,151 for L = 31, l = 3, C = 64 (research count of the authors' model), module by
    module; a wider MSI only adds its first guide convolution's weights."""
    model = N.GuidedDeepDecoder(31, 3, 31, width=64)
    parts = {"encode": 74112, "guide_up": 73920, "decode": 37056, "guide_top": 37056,
             "refine": 8448, "lateral": 4288, "upsample": 4160, "code_in": 2176, "out": 2015,
             "guide_in": 1920}
    assert {k: count_parameters(getattr(model, k)) for k in parts} == parts
    assert count_parameters(model) == 245151
    # 10 batch norms of 64 channels (mean, variance, counter); the authors' unused 11th is left out
    assert sum(b.numel() for b in model.buffers()) == 10 * 129
    assert count_parameters(N.GuidedDeepDecoder(31, 5, 31)) == 245151 + 2 * 9 * 64


def test_fused_parameter_count_does_not_depend_on_size_or_scale():
    fused = methods.get("gdd", iterations=1).fuse(known_problem(smooth_scene(64), 8), device="cpu")
    assert fused.n_params == 245151
    params = methods.get("gdd").params
    for rows, cols, scale in ((48, 80, 4), (256, 256, 32)):
        model, code = N.build(known_problem(smooth_scene(rows, cols), scale), params, 0, "cpu")
        assert count_parameters(model) == 245151
        assert code.shape == (1, 31, N.padded_size(rows) // 32, N.padded_size(cols) // 32)


# ------------------------------------------------------------------------ geometry

def test_padded_size_is_a_multiple_of_32_and_at_least_64():
    assert [N.padded_size(n) for n in (1, 24, 40, 64, 96, 144, 512, 513)] == [
        64, 64, 64, 64, 96, 160, 512, 544]


def test_mirror_padding_matches_numpy_symmetric_even_when_wider_than_the_image():
    x = np.random.default_rng(0).random((2, 5, 7)).astype(np.float32)
    got = N.mirror_pad(torch.from_numpy(x)[None], 64, 32)[0].numpy()
    np.testing.assert_array_equal(got, np.pad(x, ((0, 0), (0, 59), (0, 25)), mode="symmetric"))


def test_output_is_cropped_back_and_the_padding_never_reaches_the_loss():
    """A 40×24 HR image (neither a multiple of 32) is fused on a 64×64 grid and returned at
    40×24; the gradient of the loss is zero on every padded output pixel."""
    x = smooth_scene(40, 24)
    problem = known_problem(x, 4, msi_bands=4)
    fused = methods.get("gdd", **TINY).fuse(problem, device="cpu")
    assert fused.hr_hsi.shape == x.shape and fused.hr_hsi.dtype == np.float32
    assert fused.extras["padded_size"] == [64, 64]

    model, code = N.build(problem, methods.get("gdd", **TINY).params, 0, torch.device("cpu"))
    guide = N.mirror_pad(torch.from_numpy(np.moveaxis(problem.hr_msi, -1, 0))[None], 64, 64)
    out = model(guide, code)
    out.retain_grad()
    cropped = out[:, :, :40, :24]
    srf = torch.as_tensor(problem.srf, dtype=torch.float32)
    torch.einsum("bc,ncij->nbij", srf, cropped).square().mean().backward()
    assert out.grad[:, :, 40:].abs().max() == 0 and out.grad[:, :, :, 24:].abs().max() == 0
    assert out.grad[:, :, :40, :24].abs().max() > 0


# ------------------------------------------------------------------------ learning

@pytest.mark.slow  # ~4 s on an idle core (40 steps of the full network at 64²)
def test_loss_decreases_on_a_box_psf_x32_toy():
    """64² (the smallest size with a ×32 LR grid of 2×2 and BN statistics over 2×2 codes), a
    32×32 block average, the full-width network: both terms of the loss fall within 40 steps
    (the 256² version of this check is in benchmarks/proof_gdd.py --toy)."""
    box = np.full((32, 32), 1 / 32**2)
    problem = known_problem(smooth_scene(64, seed=3), 32, psf=box)
    fused = methods.get("gdd", iterations=40, record_every=10).fuse(problem, device="cpu")
    curve = fused.extras["convergence"]
    assert curve["iteration"] == [10, 20, 30, 40]
    assert curve["loss"][-1] < 0.2 * curve["loss"][0], curve["loss"]
    assert curve["msi"][-1] < curve["msi"][0] and curve["hsi"][-1] < curve["hsi"][0]


# ------------------------------------------------------------------------ backtracking

def _tracker():
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    adam = torch.optim.Adam(model.parameters(), lr=0.1)
    return model, adam, N.Backtracker(model, adam, start=50, threshold=1e-5, cooldown=30)


def _adam_step(model, adam):
    adam.zero_grad()
    model(torch.ones(1, 2)).sum().backward()
    adam.step()


def test_backtracking_restores_weights_and_adam_state_of_10_to_19_steps_back():
    model, adam, tracker = _tracker()
    saved = {}
    for t in range(55):
        assert not tracker.rose(t, 1.0 - 1e-3 * t)  # a falling loss is never undone
        _adam_step(model, adam)
        tracker.after_step(t)
        if t == 39:  # snapshots after steps 39 and 49 are kept at step 55
            saved = {"w": model.weight.detach().clone(),
                     "m": adam.state[model.weight]["exp_avg"].clone(),
                     "n": int(adam.state[model.weight]["step"])}
    assert tracker.rose(55, 1.0)  # above the mean of steps 15–34 by far more than 1e-5
    tracker.restore(55)
    torch.testing.assert_close(model.weight.detach(), saved["w"], rtol=0, atol=0)
    torch.testing.assert_close(adam.state[model.weight]["exp_avg"], saved["m"], rtol=0, atol=0)
    assert int(adam.state[model.weight]["step"]) == saved["n"] == 40
    assert tracker.restores == [55]
    assert not tracker.rose(56, 5.0) and not tracker.rose(84, 5.0)  # cooldown of 30 steps
    assert tracker.rose(85, 5.0)


def test_backtracking_waits_for_its_start_step():
    model, adam, tracker = _tracker()
    for t in range(49):
        _adam_step(model, adam)
        tracker.after_step(t)
        assert not tracker.rose(t, float(t))  # rising, but before step 50


# ------------------------------------------------------------------------ method API

def _small_problem(known=True):
    p = known_problem(smooth_scene(64, seed=2), 8)
    return p if known else p.blind()


def test_fuse_is_bitwise_deterministic_on_the_cpu():
    method = methods.get("gdd", **TINY)
    a = method.fuse(_small_problem(), seed=3, device="cpu")
    b = methods.get("gdd", **TINY).fuse(_small_problem(), seed=3, device="cpu")
    c = method.fuse(_small_problem(), seed=4, device="cpu")
    np.testing.assert_array_equal(a.hr_hsi, b.hr_hsi)
    assert a.extras["convergence"] == b.extras["convergence"]
    assert not np.array_equal(a.hr_hsi, c.hr_hsi)
    assert a.iterations == 4 and a.extras["convergence"]["iteration"] == [2, 4]
    assert a.psf is None and a.srf is None and a.extras["degradation"] == "given"


def test_progress_callback_sees_every_step():
    seen = []
    methods.get("gdd", **TINY).fuse(_small_problem(), device="cpu",
                                    progress=lambda done, total, losses: seen.append(
                                        (done, total, sorted(losses))))
    assert [s[:2] for s in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert seen[0][2] == ["backtracked", "hsi", "loss", "msi"]


def test_blind_setting_estimates_the_degradation_like_the_other_methods_that_need_it():
    fused = methods.get("gdd", **TINY).fuse(_small_problem(known=False), device="cpu")
    assert fused.extras["degradation"].startswith("estimated: psf, srf")
    assert fused.psf.ndim == 2 and fused.srf.shape == (3, 31)
    assert fused.msi_gain.shape == (3,)
    assert np.isfinite(fused.hr_hsi).all()


def test_device_auto_is_resolved_by_the_toolkit(monkeypatch):
    """``device="auto"`` goes through _deep.resolve_device (CUDA when visible)."""
    from hmifbench.methods import _deep

    asked = []
    real = _deep.resolve_device

    def spy(device):
        asked.append(device)
        return torch.device("cpu")

    monkeypatch.setattr(_deep, "resolve_device", spy)
    fused = methods.get("gdd", **TINY).fuse(_small_problem())
    assert asked == ["auto"] and fused.extras["device"] == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert real("auto").type == "cuda"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda_when_visible():
    fused = methods.get("gdd", **TINY).fuse(_small_problem(), device="auto")
    assert fused.extras["device"].startswith("cuda") and np.isfinite(fused.hr_hsi).all()


def test_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    """Backtracking from step 12 with a short window and no threshold, so that it fires: its snapshots, loss history and
    cooldown are part of the checkpoint, so the resumed run is bitwise the uninterrupted one."""
    tiny = dict(TINY, iterations=30, backtrack_start=12, backtrack_threshold=0.0)
    monkeypatch.setattr(N, "Backtracker", functools.partial(N.Backtracker, window=(4, 2),
                                                            cooldown=3))
    reference = methods.get("gdd", **tiny).fuse(_small_problem(), device="cpu")
    assert reference.extras["backtracks"]  # the rule fired, so its state matters

    def stop(done, total, losses):
        if done == 22:
            raise KeyboardInterrupt

    params = dict(tiny, checkpoint_dir=str(tmp_path), checkpoint_every=10)
    with pytest.raises(KeyboardInterrupt):
        methods.get("gdd", **params).fuse(_small_problem(), device="cpu", progress=stop)
    resumed = methods.get("gdd", **params).fuse(_small_problem(), device="cpu")
    assert resumed.extras["resumed_from"] == 20
    np.testing.assert_array_equal(resumed.hr_hsi, reference.hr_hsi)
    assert resumed.extras["backtracks"] == reference.extras["backtracks"]
    assert resumed.extras["convergence"] == reference.extras["convergence"]


def test_conformance_checks():
    from hmifbench.testing import check_method

    check_method("gdd")
