"""LTMR: the tensor proximal maps, patch grouping, fusion quality against bicubic upsampling
and GSA, the blind setting, bad input, determinism."""

import functools

import numpy as np
import pytest

from hmifbench.errors import InputError
from hmifbench.methods import FusionProblem, get
from hmifbench.methods.ltmr import (aggregate_patches, extract_patches, grouped_tensor_prox,
                                    kmeans, patch_index, patch_positions,
                                    shrink_singular_values, tensor_prox)
from hmifbench.metrics import psnr, sam
from tests.synthetic_pairs import simulate

# 15 ADMM iterations instead of the paper's 100 keep the tests fast.
FAST = {"iterations": 15}


# ---- building blocks ------------------------------------------------------------------------

def test_soft_threshold_minimises_the_scalar_problem():
    c, grid = 0.3, np.linspace(0, 5, 500001)
    for sigma in (0.2, 1.0, 3.0):
        x = shrink_singular_values(np.array([sigma]), c, "nuclear")[0]
        assert x == pytest.approx(grid[np.argmin(0.5 * (grid - sigma) ** 2 + c * grid)], abs=1e-4)


def test_log_shrinkage_is_the_larger_stationary_point():
    # ½(x − σ)² + c·log(x + ε): a local minimum at the larger root of (x − σ)(x + ε) + c = 0
    # when σ ≥ 2√c (about), else 0 — the closed form of Gu et al. used by Dian & Li.
    c, eps = 0.3, np.finfo(float).eps
    for sigma in (1.2, 1.5, 3.0):
        x = shrink_singular_values(np.array([sigma]), c, "log")[0]
        assert 0 < x < sigma
        assert (x - sigma) + c / (x + eps) == pytest.approx(0.0, abs=1e-9)
        assert 1 - c / (x + eps) ** 2 > 0
    assert shrink_singular_values(np.array([0.2, 1.0]), c, "log").tolist() == [0.0, 0.0]


@pytest.mark.parametrize("penalty", ["log", "nuclear"])
def test_tensor_prox_is_svd_shrinkage_of_the_fourier_slices(penalty):
    rng = np.random.default_rng(0)
    t = rng.standard_normal((30, 6, 9))
    f = np.fft.fft(t, axis=2)
    out = np.empty_like(f)
    for i in range(t.shape[2]):
        u, s, vh = np.linalg.svd(f[:, :, i], full_matrices=False)
        out[:, :, i] = (u * shrink_singular_values(s, 2.0, penalty)) @ vh
    np.testing.assert_allclose(tensor_prox(t, 2.0, penalty), np.fft.ifft(out, axis=2).real, atol=1e-10)


def test_grouped_prox_equals_the_prox_of_each_group():
    rng = np.random.default_rng(1)
    patches = rng.standard_normal((49, 90, 10))            # (pixels, patches, channels)
    bounds = np.array([0, 30, 31, 90])
    out = grouped_tensor_prox(patches, bounds, 2.0, "log")
    for a, b in zip(bounds[:-1], bounds[1:]):
        ref = tensor_prox(patches[:, a:b].transpose(1, 2, 0), 2.0, "log").transpose(2, 0, 1)
        np.testing.assert_allclose(out[:, a:b], ref, atol=2e-5)  # single precision inside


def test_patches_cover_the_image_and_average_back_exactly():
    rng = np.random.default_rng(2)
    img = rng.random((3, 40, 37))
    rows, cols = patch_positions(40, 7, 3), patch_positions(37, 7, 3)
    assert rows[-1] == 40 - 7 and cols[-1] == 37 - 7
    index = patch_index((40, 37), 7, rows, cols)
    patches = extract_patches(img, index, np.float64)
    assert patches.shape == (49, len(rows) * len(cols), 3)
    np.testing.assert_array_equal(patches[:, len(cols) + 2, 1], img[1, 3:10, 6:13].ravel())
    np.testing.assert_allclose(aggregate_patches(patches, index, (40, 37)), img, atol=1e-12)


def test_kmeans_separates_separated_clusters():
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.concatenate([c + rng.standard_normal((50, 2)) for c in centres])
    labels = kmeans(x, 3, np.random.default_rng(0))
    for g in range(3):
        assert len(set(labels[50 * g:50 * (g + 1)])) == 1
    assert len(set(labels)) == 3


# ---- quality --------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def run(scale, seed, iterations=FAST["iterations"]):
    """(truth, problem, LTMR result), computed once per module: LTMR is the slow one."""
    x, problem = simulate(64, scale, seed=seed)
    return x, problem, get("ltmr", iterations=iterations).fuse(problem)


@pytest.mark.parametrize("scale", [4, 8])
def test_ltmr_beats_bicubic_upsampling(scale):
    x, problem, fused = run(scale, 0)
    assert fused.hr_hsi.shape == x.shape and fused.hr_hsi.dtype == np.float32
    assert fused.iterations == FAST["iterations"]
    assert psnr(x, fused.hr_hsi) > psnr(x, get("upsample").fuse(problem).hr_hsi) + 8


@pytest.mark.parametrize("seed", [0, 1])
def test_ltmr_beats_gsa_at_x8_in_psnr_and_sam(seed):
    x, problem, fused = run(8, seed)
    gsa = get("gsa").fuse(problem).hr_hsi
    assert psnr(x, fused.hr_hsi) > psnr(x, gsa) + 3
    assert sam(x, fused.hr_hsi) < sam(x, gsa)


def test_the_low_rank_prior_improves_on_the_first_iterate():
    # Iteration 1 is the quadratic (Sylvester) solution with the bicubic image as prior;
    # the tensor prior must add to it.
    x, _, first = run(8, 1, iterations=1)
    _, _, later = run(8, 1)
    assert psnr(x, later.hr_hsi) > psnr(x, first.hr_hsi) + 1


def test_blind_setting_uses_the_hysure_estimator():
    x, problem = simulate(64, 4, seed=1)
    fused = get("ltmr", **FAST).fuse(problem.blind())
    assert fused.psf is not None and fused.srf is not None
    assert psnr(x, fused.hr_hsi) > psnr(x, get("upsample").fuse(problem).hr_hsi) + 5


# ---- parameters, bad input, determinism -----------------------------------------------------

@pytest.mark.parametrize("params, name", [({"subspace_dim": 0}, "subspace_dim"),
                                          ({"clusters": 0}, "clusters"),
                                          ({"patch_step": 9}, "patch_step"),
                                          ({"eta": 0.0}, "eta"), ({"mu": -1.0}, "mu"),
                                          ({"iterations": 0}, "iterations"),
                                          ({"penalty": "l1"}, "penalty"),
                                          ({"pad": -2}, "pad")])
def test_bad_parameters_name_the_parameter(params, name):
    with pytest.raises(InputError, match=name):
        get("ltmr", **params)


def test_bad_inputs_raise_input_errors():
    _, problem = simulate(32, 4)
    lr, hr = problem.lr_hsi, problem.hr_msi
    with pytest.raises(InputError, match="columns"):
        FusionProblem(lr, hr, 4, psf=problem.psf, srf=problem.srf[:, 1:])
    with pytest.raises(InputError, match="scale"):
        FusionProblem(lr, hr, 3, psf=problem.psf, srf=problem.srf)
    bad = lr.copy()
    bad[2, 2, 5] = np.nan
    with pytest.raises(InputError, match="NaN"):
        FusionProblem(bad, hr, 4, psf=problem.psf, srf=problem.srf)
    with pytest.raises(InputError, match="patch"):
        get("ltmr", patch_size=40, patch_step=3).fuse(problem)


def test_deterministic_under_a_seed():
    _, problem = simulate(32, 4, seed=2)
    a = get("ltmr", iterations=3).fuse(problem, seed=7).hr_hsi
    b = get("ltmr", iterations=3).fuse(problem, seed=7).hr_hsi
    np.testing.assert_array_equal(a, b)


def test_conformance_checks():
    from hmifbench.testing import check_method

    check_method("ltmr")
