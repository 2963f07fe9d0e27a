"""Tests of the MossFuse reimplementation (methods/mossfuse): architecture, degradation
operators, losses, sampling, the method API (fit/fuse, state, resume) and determinism.

Everything runs on tiny images and narrow networks; the full-size checks (speed, FLOPs,
estimator accuracy, quality against bicubic at a real budget) are in
benchmarks/bench_mossfuse.py.
"""

from __future__ import annotations


import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hmifbench import methods  # noqa: E402
from hmifbench.errors import InputError  # noqa: E402
from hmifbench.methods import FusionProblem  # noqa: E402
from hmifbench.observation import (gaussian_psf, normalise_srf, spatial_degrade,  # noqa: E402
                                   spectral_degrade)

torch.set_num_threads(1)

# Nikon D700 "create_F" counts (MossFuse dataset/resp.mat, docs/references.md), rows R, G, B over 400..700 nm.
D700_COUNTS = np.array([
    [2, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 6, 11, 17, 21, 22, 21, 20, 20, 19, 19, 18, 18, 17, 17],
    [1, 1, 1, 1, 1, 1, 2, 4, 6, 8, 11, 16, 19, 21, 20, 18, 16, 14, 11, 7, 5, 3, 2, 2, 1, 1, 2, 2, 2, 2, 2],
    [7, 10, 15, 19, 25, 29, 30, 29, 27, 22, 16, 9, 2, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]],
    dtype=float)
D700 = normalise_srf(D700_COUNTS)

TINY = dict(width=8, heads=8, patch_size=32, patch_stride=16)


def smooth_cube(size=32, bands=31, seed=0):
    """A smooth random reflectance cube in [0, 1]: 3 smooth spectra mixed by blurred maps."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, bands)
    spectra = np.stack([0.1 + 0.8 * np.exp(-0.5 * ((t - rng.uniform()) / rng.uniform(0.2, 0.5)) ** 2)
                        for _ in range(3)])
    maps = ndimage.gaussian_filter(rng.random((size, size, 3)), (size / 8, size / 8, 0), mode="wrap")
    maps = np.exp(6 * (maps - maps.mean()) / maps.std() / 3)
    maps /= maps.sum(-1, keepdims=True)
    return (maps @ spectra).astype(np.float32)


def simulate(size=32, scale=4, sigma=1.0, ksize=5, seed=0):
    x = smooth_cube(size, seed=seed)
    psf = gaussian_psf(ksize, sigma)
    return x, FusionProblem(spatial_degrade(x, psf, scale), spectral_degrade(x, D700), scale)


# ------------------------------------------------------------------ metadata and parameters

def test_metadata_and_params():
    cls = methods.get_class("mossfuse")
    assert (cls.name, cls.family, cls.training, cls.blind) == ("mossfuse", "deep", "dataset", True)
    assert cls.resources.gpu == 1
    p = methods.get("mossfuse").params
    assert (p.sc_weight, p.sct_weight, p.de_weight, p.ma_weight) == (0.1, 1.0, 1.0, 1.0)
    assert (p.width, p.blocks, p.lr, p.batch_size, p.patch_size, p.epochs) == (48, 1, 9e-5, 2, 128, 500)
    d = cls.describe()["params"]
    assert d["mode"]["default"] == "dataset" and d["iterations"]["doc"]


@pytest.mark.parametrize("bad", [dict(width=12), dict(mode="zero-shot"), dict(iterations=-1),
                                 dict(sc_weight=0, sct_weight=0, de_weight=0, ma_weight=0),
                                 dict(lr=0.0), dict(nonsense=1)])
def test_bad_params_are_input_errors(bad):
    with pytest.raises(InputError):
        methods.get("mossfuse", **bad)


@pytest.mark.parametrize("blocks, expected", [
    (1, {"msi_encoder": 185800, "hsi_encoder": 158172, "msi_decoder": 43262, "hsi_decoder": 51182,
         "degradation": 97, "lr_decoder": 41888, "fusion_decoder": 105084,
         "total": 585485, "inference": 449153}),
    (3, {"msi_encoder": 238328, "hsi_encoder": 210700, "msi_decoder": 95790, "hsi_decoder": 103710,
         "degradation": 97, "lr_decoder": 94416, "fusion_decoder": 157612,
         "total": 900653, "inference": 606737}),
])
def test_parameter_counts_equal_released_configuration(blocks, expected):
    from hmifbench.methods.mossfuse.network import MossFuseNet, parameter_table

    model = MossFuseNet(bands=31, msi_bands=3, scale=32, width=48, blocks=blocks)
    assert parameter_table(model) == expected


def test_no_decoupling_drops_the_complementary_heads():
    from hmifbench.methods.mossfuse.network import MossFuseNet, parameter_table

    full = parameter_table(MossFuseNet(31, 3, 32))
    plain = parameter_table(MossFuseNet(31, 3, 32, decoupling=False))
    lk7, lk0, tb = 25260, 20364, 26264  # released block sizes at width 48
    assert full["msi_encoder"] - plain["msi_encoder"] == lk7 + 2 * lk0
    assert full["hsi_encoder"] - plain["hsi_encoder"] == tb


# ------------------------------------------------------------------ degradation operators

@pytest.mark.parametrize("scale, ksize, offset", [(32, 31, None), (4, 3, None), (4, 15, None),
                                                  (8, 15, 0), (8, 7, 7), (4, 9, 2)])
def test_blur_decimate_matches_observation_model(scale, ksize, offset):
    from hmifbench.methods.mossfuse.degradation import blur_decimate

    rng = np.random.default_rng(1)
    x = rng.random((2 * scale if scale > 16 else 32, 2 * scale if scale > 16 else 32, 3)).astype(np.float32)
    psf = gaussian_psf(ksize, 1.7, 1.1, 25.0)
    off = scale // 2 - 1 if offset is None else offset
    ref = spatial_degrade(x, psf, scale, off)
    got = blur_decimate(torch.from_numpy(x.transpose(2, 0, 1))[None].double(),
                        torch.from_numpy(psf), scale, off)[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_gaussian_kernel_matches_observation_psf():
    from hmifbench.methods.mossfuse.degradation import DegradationEstimator

    est = DegradationEstimator(31, 3, 32, 31, 15).double()
    with torch.no_grad():
        est.psf_param.copy_(torch.eye(2) / 2.0)  # Σ⁻¹ = I/4: σ = 2 px
    np.testing.assert_allclose(est.psf_kernel().detach().numpy(), gaussian_psf(31, 2.0), atol=1e-12)
    np.testing.assert_allclose(est.psf_covariance().numpy(), 4 * np.eye(2), atol=1e-9)
    # Initial values as released: a 0.2-px Gaussian and a flat SRF.
    est0 = DegradationEstimator(31, 3, 32, 31, 15)
    assert est0.psf_kernel()[15, 15] > 0.99
    np.testing.assert_allclose(est0.srf_matrix().detach().numpy(), np.full((3, 31), 1 / 31), atol=1e-7)


def test_degradation_loss_is_zero_at_the_truth():
    from hmifbench.methods.mossfuse.degradation import DegradationEstimator

    x, prob = simulate(64, 32, sigma=2.0, ksize=31)
    msi = torch.from_numpy(prob.hr_msi.transpose(2, 0, 1))[None]
    lr = torch.from_numpy(prob.lr_hsi.transpose(2, 0, 1))[None]
    est = DegradationEstimator(31, 3, 32, 31, 15)
    y_x, y_y, _, _ = est(lr, msi)
    assert float((y_x - y_y).detach().abs().mean()) > 1e-3
    with torch.no_grad():
        est.psf_param.copy_(torch.eye(2) / 2.0)
        est.srf.copy_(torch.from_numpy(D700_COUNTS))  # any positive row scaling
    y_x, y_y, srf, _ = est(lr, msi)
    np.testing.assert_allclose(srf.detach().numpy(), D700, atol=1e-7)
    assert float((y_x - y_y).detach().abs().mean()) < 1e-6


# ------------------------------------------------------------------ losses

def test_subspace_clustering_loss_formula():
    from hmifbench.methods.mossfuse.losses import subspace_clustering_loss

    g = torch.Generator().manual_seed(0)
    a, b, c, d = (torch.randn(2, 4, 5, 5, generator=g) for _ in range(4))
    cos = lambda u, v: float((u.flatten() @ v.flatten()) / (u.norm() * v.norm()))  # noqa: E731
    pos = np.exp(cos(a, c))
    neg = np.exp(cos(a, b)) + np.exp(cos(c, d)) + np.exp(cos(b, d))
    assert float(subspace_clustering_loss(a, b, c, d)) == pytest.approx(-np.log(pos / (pos + neg)), rel=1e-5)
    # Shared features aligned and orthogonal to the complementary ones: the minimum region.
    e1, e2, e3 = torch.zeros(3, 1, 3, 1, 1)
    e1[0, 0], e2[0, 1], e3[0, 2] = 1, 1, 1
    low = float(subspace_clustering_loss(e1, e2, e1, e3))
    high = float(subspace_clustering_loss(e1, e1, e2, e2))
    assert low < high


def test_degradation_gets_gradient_only_from_l_de():
    from hmifbench.methods.mossfuse.network import MossFuseNet
    from hmifbench.methods.mossfuse.training import compute_losses

    p = methods.get("mossfuse", de_weight=0.0).params
    torch.manual_seed(0)
    model = MossFuseNet(31, 3, 4, width=8, psf_size=7, offset=1)
    _, prob = simulate(16, 4)
    msi = torch.from_numpy(prob.hr_msi.transpose(2, 0, 1))[None].repeat(2, 1, 1, 1)
    lr = torch.from_numpy(prob.lr_hsi.transpose(2, 0, 1))[None].repeat(2, 1, 1, 1)
    compute_losses(model, msi, lr, p)["total"].backward()
    assert all(q.grad is None or not q.grad.any() for q in model.degradation.parameters())
    assert model.fusion_decoder.head[2].weight.grad.abs().sum() > 0
    model.zero_grad()
    compute_losses(model, msi, lr, methods.get("mossfuse", sc_weight=0, sct_weight=0,
                                               ma_weight=0).params)["total"].backward()
    assert model.degradation.srf.grad.abs().sum() > 0
    assert model.degradation.psf_param.grad[1, 1] != 0 and model.degradation.psf_param.grad[0, 1] == 0
    assert all(q.grad is None for n, q in model.named_parameters() if not n.startswith("degradation"))


def test_degradation_warmup_recovers_the_psf_and_srf():
    x, prob = simulate(64, 4, sigma=1.2, ksize=7, seed=3)
    f = methods.get("mossfuse", mode="per-scene", iterations=1, psf_size=7, degradation_warmup=300,
                    lr_degradation=0.05, **TINY).fuse(prob, device="cpu")
    assert np.allclose(f.extras["psf_sigma_px"], 1.2, atol=0.1)
    # Three materials determine the SRF only on a 3-D subspace: ask for progress, not identity.
    assert np.abs(f.srf - D700).mean() < 0.5 * np.abs(1 / 31 - D700).mean()
    none = methods.get("mossfuse", mode="per-scene", iterations=1, psf_size=7, **TINY).fuse(prob)
    assert np.allclose(none.extras["psf_sigma_px"], 0.2, atol=0.01)


def test_fast_operators_match_reference_formulation():
    from hmifbench.methods.mossfuse import network as N

    torch.manual_seed(0)
    model = N.MossFuseNet(31, 3, 4, width=16, psf_size=7, offset=1)
    with torch.no_grad():
        for q in model.parameters():
            q.add_(0.05 * torch.randn_like(q))
    msi, lr = torch.rand(2, 3, 16, 16), torch.rand(2, 31, 4, 4)
    try:
        N.FAST_OPS = False
        ref = model(msi, lr)
        N.FAST_OPS = True
        fast = model.to(memory_format=torch.channels_last)(
            msi.contiguous(memory_format=torch.channels_last), lr.contiguous(memory_format=torch.channels_last))
    finally:
        N.FAST_OPS = True
    for key in ref:
        torch.testing.assert_close(fast[key], ref[key], atol=2e-5, rtol=1e-4)


# ------------------------------------------------------------------ sampling

def test_patch_grid_covers_and_clamps():
    from hmifbench.methods.mossfuse.training import PatchSampler, Scene, grid_starts

    assert grid_starts(512, 128, 64) == [0, 64, 128, 192, 256, 320, 384]
    assert grid_starts(100, 40, 32) == [0, 32, 60]
    scenes = [Scene(torch.rand(3, 16, 24), torch.rand(31, 4, 6))]
    sampler = PatchSampler(scenes, 4, 1, 32, 8, 2, False, seed=0)
    assert (sampler.rows, sampler.cols) == (16, 24) and len(sampler) == 1
    msi, lr, ctx = sampler.batch(0)
    assert msi.shape == (2, 3, 16, 24) and lr.shape == (2, 31, 4, 6) and ctx is None
    a, b = PatchSampler(scenes, 4, 1, 32, 8, 2, False, seed=0).batch(3), sampler.batch(3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("scale, ksize, sigma", [(4, 7, 2.0), (32, 31, 2.0), (8, 15, 2.5)])
def test_aligned_augmentation_keeps_the_observation_model_exact(scale, ksize, sigma):
    """At the true PSF/SRF, ŷ_x = ŷ_Y on every augmented patch with 'aligned' (and with the
    context margin when the PSF is wider than s − 1); 'released' flips break it."""
    from hmifbench.methods.mossfuse.degradation import DegradationEstimator, context_margin
    from hmifbench.methods.mossfuse.training import PatchSampler, to_scene

    size = 64 if scale < 32 else 96
    _, prob = simulate(size, scale, sigma=sigma, ksize=ksize, seed=2)
    est = DegradationEstimator(31, 3, scale, ksize, prob.offset).double()
    with torch.no_grad():
        est.psf_param.copy_(torch.eye(2) / sigma)
        est.srf.copy_(torch.from_numpy(D700))
    margin = context_margin(ksize, scale, prob.offset)
    errors = {}
    for mode in ("aligned", "released"):
        sampler = PatchSampler([to_scene(prob)], scale, prob.offset, 32 if scale < 32 else 64,
                               16 if scale < 32 else 32, 8, True, seed=1, augment=mode,
                               margin=margin)
        msi, lr, ctx = sampler.batch(0)
        y_x, y_y, _, _ = est(lr.double(), (msi if ctx is None else ctx).double(), margin)
        errors[mode] = float((y_x - y_y).detach().abs().max())
    assert errors["aligned"] < 1e-6
    assert errors["released"] > 1e-3


# ------------------------------------------------------------------ the method

def test_per_scene_fuse_runs_and_is_deterministic():
    _, prob = simulate(32, 4)
    m = methods.get("mossfuse", mode="per-scene", iterations=2, **TINY)
    a = m.fuse(prob, seed=3, device="cpu")
    b = m.fuse(prob, seed=3, device="cpu")
    assert a.hr_hsi.shape == (32, 32, 31) and a.hr_hsi.dtype == np.float32
    assert np.isfinite(a.hr_hsi).all() and a.hr_hsi.min() >= 0 and a.hr_hsi.max() <= 1
    np.testing.assert_array_equal(a.hr_hsi, b.hr_hsi)
    np.testing.assert_array_equal(a.psf, b.psf)
    assert a.psf.shape == (15, 15) and a.psf.sum() == pytest.approx(1, abs=1e-9)
    assert a.srf.shape == (3, 31) and np.allclose(a.srf.sum(1), 1) and (a.srf >= 0).all()
    assert a.iterations == 2 and a.n_params > a.extras["n_params_inference"] > 0
    c = m.fuse(prob, seed=4, device="cpu")
    assert not np.array_equal(a.hr_hsi, c.hr_hsi)


def test_default_tiny_run_is_valid():
    _, prob = simulate(32, 32, sigma=2.0, ksize=31)
    f = methods.get("mossfuse", mode="per-scene", iterations=1).fuse(prob, device="cpu")
    assert f.hr_hsi.shape == (32, 32, 31) and f.n_params == 585485 and f.psf.shape == (31, 31)


def test_ablations_run():
    _, prob = simulate(16, 4)
    for kw in (dict(decoupling=False), dict(sct_weight=0.0), dict(de_weight=0.0, sc_weight=0.0)):
        f = methods.get("mossfuse", mode="per-scene", iterations=1, **TINY, **kw).fuse(prob, device="cpu")
        assert f.hr_hsi.shape == (16, 16, 31)
    plain = methods.get("mossfuse", mode="per-scene", iterations=1, decoupling=False, **TINY)
    assert plain.fuse(prob).n_params < methods.get("mossfuse", mode="per-scene", iterations=1,
                                                   **TINY).fuse(prob).n_params


def test_fit_state_fuse_and_resume(tmp_path):
    pairs = [simulate(32, 4, seed=s)[1] for s in (0, 1)]
    m = methods.get("mossfuse", iterations=4, checkpoint_every=1, **TINY)
    # An interrupted run (the progress callback raises after step 3) resumes to the same result.
    def stop_at_three(t, total, losses):
        assert set(losses) >= {"sc", "sct", "de", "ma", "total"}
        if t == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        m.fit(pairs, seed=0, device="cpu", progress=stop_at_three, workdir=tmp_path / "a")
    saved = torch.load(tmp_path / "a" / "mossfuse-train.pt", weights_only=True)
    assert saved["iteration"] == 3 and "optimizer" in saved
    state = m.fit(pairs, seed=0, device="cpu", workdir=tmp_path / "a")
    fresh = m.fit(pairs, seed=0, device="cpu", workdir=tmp_path / "b")
    assert set(state) == {"format", "checkpoint"}
    wa = torch.load(state["checkpoint"], weights_only=True)["model"]
    wb = torch.load(fresh["checkpoint"], weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # One forward pass per test scene, from the path or the in-memory state.
    test = simulate(32, 4, seed=5)[1]
    f1 = m.fuse(test, state=state, device="cpu")
    f2 = m.fuse(test, state=state["checkpoint"], device="cpu")
    f3 = m.fuse(test, state=m.fit(pairs, seed=0, device="cpu"), device="cpu")
    np.testing.assert_array_equal(f1.hr_hsi, f2.hr_hsi)
    np.testing.assert_array_equal(f1.hr_hsi, f3.hr_hsi)
    assert f1.iterations == 4
    # A different configuration must not silently resume from the same directory.
    with pytest.raises(InputError):
        methods.get("mossfuse", iterations=4, **{**TINY, "width": 16}).fit(
            pairs, seed=0, device="cpu", workdir=tmp_path / "a")


def test_input_errors():
    _, prob = simulate(32, 4)
    with pytest.raises(InputError, match="state"):
        methods.get("mossfuse", **TINY).fuse(prob)
    with pytest.raises(InputError, match="multiple of the scale"):
        methods.get("mossfuse", mode="per-scene", iterations=1, patch_size=30).fuse(prob)
    with pytest.raises(InputError, match="agree"):
        x = smooth_cube(32)
        other = FusionProblem(spatial_degrade(x, gaussian_psf(5, 1.0), 8), prob.hr_msi, 8)
        methods.get("mossfuse", iterations=1, **TINY).fit([prob, other])
    with pytest.raises(InputError):
        methods.get("mossfuse", iterations=1, **TINY).fit([])
    state = methods.get("mossfuse", iterations=1, **TINY).fit([prob], device="cpu")
    with pytest.raises(InputError, match="expects"):
        methods.get("mossfuse", **TINY).fuse(FusionProblem(prob.lr_hsi[..., :30], prob.hr_msi, 4),
                                             state=state)
    with pytest.raises(InputError, match="does not exist"):
        methods.get("mossfuse", **TINY).fuse(prob, state="/nonexistent/mossfuse.pt")
