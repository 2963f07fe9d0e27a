"""Tests of the CUCaNet reimplementation (methods/cucanet): parameter count in the standard
setting, degradation layers against the suite's observation model, the loss's reductions,
schedule, known/blind handling, determinism and resume. Tiny images and narrow networks only;
the CPU proof on real crops is benchmarks/proof_cucanet.py."""

from __future__ import annotations


import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hmifbench import methods  # noqa: E402
from hmifbench.datasets.srf import srf_for  # noqa: E402
from hmifbench.errors import InputError  # noqa: E402
from hmifbench.methods import FusionProblem  # noqa: E402
from hmifbench.methods.cucanet import network as N  # noqa: E402
from hmifbench.methods.cucanet import solver  # noqa: E402
from hmifbench.observation import gaussian_psf, spatial_degrade, spectral_degrade  # noqa: E402

torch.set_num_threads(1)
WAVELENGTHS = np.arange(400.0, 701.0, 10.0)
TINY = {"width": 16, "endmembers": 8}


def nikon_table_a():
    """The Nikon D700 table the authors use: supports 0–11, 5–30, 16–30 (53 weights)."""
    return srf_for("nikon-d700-a", WAVELENGTHS)[0]


def toy_problem(size=32, scale=4, bands=31, known=True, seed=0):
    from hmifbench.datasets.synthetic import make_scene

    x = make_scene(seed=seed, size=size, wavelengths=np.linspace(400, 700, bands)).data
    srf = srf_for("nikon-d700", np.linspace(400, 700, bands))[0]
    psf = gaussian_psf(2 * scale + 1, scale / 2.3548)
    problem = FusionProblem(spatial_degrade(x, psf, scale), spectral_degrade(x, srf), scale,
                            psf=psf if known else None, srf=srf if known else None)
    return problem, x


def model_on_meta(size, scale, srf):
    with torch.device("meta"):
        net = N.CUCaNet(31, 3, scale, (size // scale, size // scale))
        return N.Model(net, N.BlockPSF(scale), N.SupportSRF(N.srf_support(srf, 3, 31), 31))


# ------------------------------------------------------------------ parameter count

def test_parameter_count_in_the_standard_setting_is_1010230():
    # 512² HR, ×32, 31/3 bands, K = 128, width 512, learned PSF and Nikon-support SRF; built
    # on the meta device (shapes only, nothing allocated or run).
    table = model_on_meta(512, 32, nikon_table_a()).parameter_table()
    assert table["total"] == 1_010_230
    assert table == {"enc_m": 436_480, "enc_h": 168_704, "head_h": 131_200, "head_m": 131_200,
                     "spectral_att": 131_584, "spatial_att": 4_609, "dec_h": 3_968,
                     "dec_m": 384, "psf": 1_024, "psf2": 1_024, "srf": 53, "total": 1_010_230}


def test_parameter_count_follows_the_lr_image_size():
    srf = nikon_table_a()
    assert model_on_meta(512, 8, srf).parameter_table()["total"] == 2_974_390
    assert model_on_meta(64, 8, srf).parameter_table()["total"] == 910_006


def test_fused_n_params_counts_only_what_is_trained():
    problem, _ = toy_problem()
    known = methods.get("cucanet", iterations=1, **TINY).fuse(problem, device="cpu")
    learned = methods.get("cucanet", iterations=1, psf_mode="learn", srf_mode="learn",
                          **TINY).fuse(problem, device="cpu")
    table = learned.extras["n_params_by_module"]
    assert learned.n_params == table["total"] == known.n_params + 4 * 4 + 31 * 3
    assert known.extras["n_params_by_module"]["psf"] == known.extras["n_params_by_module"]["srf"] == 0


# ------------------------------------------------------------------ degradation layers

@pytest.mark.parametrize("border", ["reflect101", "symmetric", "wrap", "zero"])
@pytest.mark.parametrize("scale,offset,ksize", [(4, 1, 9), (8, 3, 23), (4, 0, 4)])
def test_known_psf_layer_equals_the_suites_spatial_degradation(border, scale, offset, ksize):
    rng = np.random.default_rng(1)
    x = rng.random((24, 32, 5)).astype(np.float32)
    psf = gaussian_psf(ksize, ksize / 5, sigma_y=ksize / 7, angle_deg=20)
    expected = spatial_degrade(x, psf, scale, offset, border)
    layer = N.KnownPSF(psf, scale, offset, border, x.shape[:2])
    got = layer(torch.from_numpy(np.moveaxis(x, -1, 0))[None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-6)


@pytest.mark.parametrize("scale,offset", [(8, 3), (4, 1), (32, 15)])
def test_block_psf_reported_kernel_reproduces_the_layer(scale, offset):
    torch.manual_seed(0)
    layer = N.BlockPSF(scale)
    with torch.no_grad():
        layer.weight.copy_(torch.rand_like(layer.weight))
        layer.weight.div_(layer.weight.sum())
    x = np.random.default_rng(2).random((2 * scale, 3 * scale, 4)).astype(np.float32)
    kernel = layer.as_centred_kernel(offset)
    assert kernel.shape[0] == 2 * max(offset, scale - 1 - offset) + 1
    expected = spatial_degrade(x, kernel, scale, offset)
    with torch.no_grad():
        got = layer(torch.from_numpy(np.moveaxis(x, -1, 0))[None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-6)


def test_support_srf_normalised_constant_divisor_and_projection():
    srf = nikon_table_a()
    layer = N.SupportSRF(N.srf_support(srf, 3, 31), 31)
    assert layer.weight.numel() == 53
    assert N.srf_support(srf, 3, 31) == [(16, 30), (5, 30), (0, 11)]
    with torch.no_grad():
        layer.weight.mul_(torch.linspace(0.5, 2.0, 53))
    m = layer.matrix()
    np.testing.assert_allclose(m.sum(1).detach().numpy(), 1.0, rtol=1e-6)
    x = torch.rand(1, 31, 4, 4) * 0.5
    np.testing.assert_allclose(layer(x).detach().numpy(),
                               torch.einsum("cb,nbhw->nchw", m, x).detach().numpy(), rtol=1e-6)
    # The divisor is a constant: the gradient of Σw·x/c is x/c, not the quotient rule's.
    layer.matrix()[0, 20].backward()
    w = layer.weight.detach()
    first = (layer.rows == 0).nonzero()[:, 0]
    col20 = first[(layer.cols[first] == 20)][0]
    assert layer.weight.grad[col20] == pytest.approx(1.0 / float(w[first].sum()), rel=1e-6)
    with torch.no_grad():
        layer.weight[0] = 50.0
        layer.weight[1] = -1.0
    layer.project()
    assert float(layer.weight.detach().min()) >= 0.0
    sums = torch.zeros(3).index_add_(0, layer.rows, layer.weight.detach())
    np.testing.assert_allclose(sums.numpy(), 1.0, rtol=1e-6)


def test_blind_support_without_srf_is_every_band():
    assert N.srf_support(None, 3, 7) == [(0, 6)] * 3


# ------------------------------------------------------------------ losses and schedule

def test_l1_data_terms_are_sum_reduced_by_default():
    problem, _ = toy_problem(size=16, scale=4, bands=8)
    params = methods.get("cucanet", **TINY).params
    assert params.reduction == "sum"
    torch.manual_seed(0)
    model = solver.build_model(params, problem, "learn", "learn")
    yh = torch.from_numpy(np.moveaxis(problem.lr_hsi, -1, 0))[None]
    ym = torch.from_numpy(np.moveaxis(problem.hr_msi, -1, 0))[None]
    with torch.no_grad():
        out = model.net(yh, ym)
        sums = solver.loss_terms(model, out, yh, ym, params, True)
        means = solver.loss_terms(model, out, yh, ym,
                                  methods.get("cucanet", reduction="mean", **TINY).params, True)
    sizes = {"hsi": yh.numel(), "msi": ym.numel(), "psf": yh.numel(), "srf": ym.numel(),
             "lr_msi": yh.shape[2] * yh.shape[3] * 3}
    for name, n in sizes.items():
        assert float(sums[name]) == pytest.approx(float(means[name]) * n, rel=1e-5), name
    # explicit formula of the HSI term: λ_A Σ|Y_h − D_h(A_h)|
    assert float(sums["hsi"]) == pytest.approx(10 * float((yh - out["lr_hsi"]).abs().sum()), rel=1e-6)
    # the regularisers do not depend on the reduction
    assert float(sums["sparsity"]) == float(means["sparsity"])


def test_sparsity_kl_is_zero_for_uniform_abundances_and_positive_otherwise():
    flat = torch.full((1, 8, 3, 3), 0.3)
    assert float(N.sparsity_kl(flat)) == pytest.approx(0.0, abs=1e-5)
    peaked = flat.clone()
    peaked[:, 0] = 1.0
    assert float(N.sparsity_kl(peaked)) > 0.1
    assert float(N.sum_to_one(torch.full((1, 4, 2, 5), 0.25))) == pytest.approx(0.0, abs=1e-6)
    assert float(N.sum_to_one(torch.full((1, 4, 2, 5), 0.5))) == pytest.approx(10.0)


def test_learning_rate_schedule_is_the_released_one():
    f = [solver.lr_factor(t, 10000, 2000) for t in range(10000)]
    assert f[0] == f[1998] == 1.0
    assert f[1999] == pytest.approx(1 - 1 / 8001)
    assert f[9999] == pytest.approx(0.0)
    assert all(a >= b for a, b in zip(f, f[1:]))


# ------------------------------------------------------------------ the method

def test_metadata_and_paper_defaults():
    cls = methods.get_class("cucanet")
    assert (cls.family, cls.training, cls.blind, cls.resources.gpu) == ("deep", "none", True, 1)
    p = methods.get("cucanet").params
    assert (p.iterations, p.lr, p.lr_flat_fraction, p.endmembers, p.width) == (10000, 5e-3, 0.2, 128, 512)
    assert (p.hsi_weight, p.msi_weight, p.srf_weight, p.psf_weight) == (10, 10, 10, 10)
    assert (p.lr_msi_weight, p.sum_to_one_weight, p.sparsity_weight) == (1e4, 0.01, 0.01)
    assert (p.abundance, p.reduction) == ("clamp", "sum")


@pytest.mark.parametrize("bad", [dict(width=10), dict(iterations=0), dict(lr=0.0),
                                 dict(lr_flat_fraction=1.5), dict(psf_weight=-1.0),
                                 dict(psf_mode="guess")])
def test_bad_params_are_refused(bad):
    with pytest.raises(InputError):
        methods.get("cucanet", **bad)


def test_known_mode_without_psf_is_refused():
    problem, _ = toy_problem(known=False)
    with pytest.raises(InputError, match="psf_mode='known'"):
        methods.get("cucanet", psf_mode="known", **TINY).fuse(problem, device="cpu")


def test_known_setting_uses_the_given_responses_and_blind_learns_them():
    problem, _ = toy_problem()
    known = methods.get("cucanet", iterations=2, **TINY).fuse(problem, device="cpu")
    assert (known.extras["psf_mode"], known.extras["srf_mode"]) == ("known", "known")
    assert known.psf is None and known.srf is None
    assert "lr_msi" not in known.extras["final_losses"]
    blind = methods.get("cucanet", iterations=2, **TINY).fuse(problem.blind(), device="cpu")
    assert (blind.extras["psf_mode"], blind.extras["srf_mode"]) == ("learn", "learn")
    assert "lr_msi" in blind.extras["final_losses"]
    assert blind.psf.shape == (5, 5)  # ×4, offset 1: c = max(1, 2) = 2
    assert blind.srf.shape == (3, 31)
    np.testing.assert_allclose(blind.srf.sum(1), 1.0, rtol=1e-6)


def test_bitwise_equal_reruns_and_convergence_curve():
    problem, _ = toy_problem()
    runs = [methods.get("cucanet", iterations=4, record_every=2, **TINY).fuse(
        problem.blind(), seed=3, device="cpu") for _ in range(2)]
    assert np.array_equal(runs[0].hr_hsi, runs[1].hr_hsi)
    assert np.array_equal(runs[0].psf, runs[1].psf)
    curve = runs[0].extras["convergence"]
    assert curve["iteration"] == [2, 4] and len(curve["loss"]) == 2
    other = methods.get("cucanet", iterations=4, **TINY).fuse(problem.blind(), seed=4, device="cpu")
    assert not np.array_equal(runs[0].hr_hsi, other.hr_hsi)


def test_checkpoint_resume_gives_the_same_result(tmp_path):
    problem, _ = toy_problem()
    params = dict(iterations=4, checkpoint_every=2, checkpoint_dir=str(tmp_path), **TINY)
    first = methods.get("cucanet", **params).fuse(problem, device="cpu")
    assert len(list(tmp_path.glob("cucanet-*.pt"))) == 1
    again = methods.get("cucanet", **params).fuse(problem, device="cpu")
    assert again.extras["resumed_from"] == 4
    assert np.array_equal(first.hr_hsi, again.hr_hsi)


def test_standardised_input_feeds_the_encoders_standardised_bands():
    """``standardise_input`` (not in the paper) only changes what the encoders see: the network
    with it equals the plain network given the standardised images; off, nothing changes."""
    torch.manual_seed(0)
    yh, ym = torch.rand(1, 31, 4, 4) * 0.2 + 0.05, torch.rand(1, 3, 16, 16) * 0.3
    net = N.CUCaNet(31, 3, 4, (4, 4), endmembers=4, width=8)
    plain = N.CUCaNet(31, 3, 4, (4, 4), endmembers=4, width=8)
    plain.load_state_dict(net.state_dict())
    net.standardise_to(yh, ym)
    torch.testing.assert_close(net.shift_msi.flatten(), ym.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(net.spread_hsi.flatten(), yh.std(dim=(0, 2, 3)))

    def std(x):
        return (x - x.mean(dim=(0, 2, 3), keepdim=True)) / x.std(dim=(0, 2, 3), keepdim=True)

    torch.testing.assert_close(net(yh, ym)["hr_hsi"], plain(std(yh), std(ym))["hr_hsi"])
    problem, _ = toy_problem()
    off = methods.get("cucanet", iterations=2, **TINY).fuse(problem, device="cpu")
    on = [methods.get("cucanet", iterations=2, standardise_input=True, **TINY).fuse(
        problem, device="cpu") for _ in range(2)]
    assert np.array_equal(on[0].hr_hsi, on[1].hr_hsi) and not np.array_equal(on[0].hr_hsi, off.hr_hsi)
    assert on[0].n_params == off.n_params
