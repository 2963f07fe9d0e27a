"""Q2n (Garzelli & Nencini 2009) and its use in the ``yokoya`` profile."""

from __future__ import annotations

import itertools
import math

import hmifbench.metrics as M
import numpy as np
import pytest
from hmifbench.metrics.q2n import (
    cd_conj,
    cd_mult,
    cd_signs,
    matlab_uint16,
    mirror_pad,
    q2n,
    q2n_map,
)

from hmifbench.errors import InputError


def _pair(rows=64, cols=64, bands=31, noise=0.03, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.random((rows // 8 + 1, cols // 8 + 1, bands))
    x = np.kron(base, np.ones((8, 8, 1)))[:rows, :cols] * 0.6 + 0.2 + 0.05 * rng.random((rows, cols, bands))
    y = x + noise * rng.standard_normal(x.shape)
    return x, y


# ------------------------------------------------------------------ the algebra

def test_cd_mult_two_components_is_complex_multiplication():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((50, 2)), rng.standard_normal((50, 2))
    got = cd_mult(a, b)
    expected = (a[:, 0] + 1j * a[:, 1]) * (b[:, 0] + 1j * b[:, 1])
    np.testing.assert_allclose(got[:, 0], expected.real, rtol=0, atol=1e-14)
    np.testing.assert_allclose(got[:, 1], expected.imag, rtol=0, atol=1e-14)


def _hamilton(p, q):
    """(a1 + b1 i + c1 j + d1 k)(a2 + b2 i + c2 j + d2 k) with i² = j² = k² = ijk = −1."""
    a1, b1, c1, d1 = p
    a2, b2, c2, d2 = q
    return np.array([a1 * a2 - b1 * b2 - c1 * c2 - d1 * d2,
                     a1 * b2 + b1 * a2 + c1 * d2 - d1 * c2,
                     a1 * c2 - b1 * d2 + c1 * a2 + d1 * b2,
                     a1 * d2 + b1 * c2 - c1 * b2 + d1 * a2])


def test_cd_mult_four_components_is_hamilton_quaternion_product():
    rng = np.random.default_rng(2)
    for _ in range(20):
        p, q = rng.standard_normal(4), rng.standard_normal(4)
        np.testing.assert_allclose(cd_mult(p, q), _hamilton(p, q), rtol=0, atol=1e-13)
    e = np.eye(4)
    one, i, j, k = e
    np.testing.assert_array_equal(cd_mult(i, j), k)        # ij = k
    np.testing.assert_array_equal(cd_mult(j, i), -k)       # ji = −k
    np.testing.assert_array_equal(cd_mult(k, k), -one)     # k² = −1


@pytest.mark.parametrize("n", [4, 8])
def test_norm_is_multiplicative_for_quaternions_and_octonions(n):
    rng = np.random.default_rng(n)
    a, b = rng.standard_normal((200, n)), rng.standard_normal((200, n))
    np.testing.assert_allclose(np.linalg.norm(cd_mult(a, b), axis=1),
                               np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), rtol=1e-12)
    # x·x* = |x|² (real)
    xx = cd_mult(a, cd_conj(a))
    np.testing.assert_allclose(xx[:, 0], (a * a).sum(1), rtol=1e-12)
    np.testing.assert_allclose(xx[:, 1:], 0.0, atol=1e-12)


def test_octonions_are_not_associative_but_sedenions_are_not_normed():
    rng = np.random.default_rng(3)
    a, b, c = rng.standard_normal((3, 8))
    assert not np.allclose(cd_mult(cd_mult(a, b), c), cd_mult(a, cd_mult(b, c)))
    a, b = rng.standard_normal((2, 200, 16))
    ratio = np.linalg.norm(cd_mult(a, b), axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert np.abs(ratio - 1).max() > 1e-3


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 32])
def test_sign_table_is_the_product_of_basis_elements(n):
    e = np.eye(n)
    prod = cd_mult(e[:, None, :], e[None, :, :])                     # (k, l, component)
    k, l = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    np.testing.assert_array_equal(prod[k, l, k ^ l], cd_signs(n))
    assert np.count_nonzero(prod) == n * n                           # nothing else


def test_cd_mult_rejects_non_powers_of_two():
    with pytest.raises(InputError, match="2ⁿ components"):
        cd_mult(np.ones(3), np.ones(3))


# -------------------------------------------------------------- index, golden

def test_identical_images_give_one():
    for shape in ((64, 64, 31), (40, 44, 5), (32, 32, 1), (50, 70, 4)):
        x, _ = _pair(*shape)
        assert abs(q2n(x, x.copy()) - 1.0) <= 1e-12, shape
        assert abs(q2n(x.astype(np.float32), x.astype(np.float32)) - 1.0) <= 1e-12, shape
    # constant blocks and a constant band (σ = 0 → eps; both-constant → termine3 == 0 branch)
    x, _ = _pair(64, 64, 6)
    x[:32, :32, :] = 0.4
    x[32:, :32, 2] = 0.0
    _, qmap = q2n_map(x, x.copy())
    assert np.all(np.abs(qmap - 1.0) <= 1e-12)


def _normalise(a, mu, sd):
    return [(v - mu) / sd + 1.0 for v in a]


def _stats(a):
    n = len(a)
    mu = sum(a) / n
    return mu, math.sqrt(sum((v - mu) ** 2 for v in a) / (n - 1))


def test_golden_one_4x4_block_two_bands():
    # One 4×4 block (block = shift = 4), two bands: z = x1' + i·x2', v = conj(y1' + i·y2'),
    # computed with Python's complex numbers, sample (n − 1) moments.
    x1 = [3, 5, 2, 8, 6, 1, 7, 4, 9, 2, 5, 3, 4, 6, 8, 1]
    x2 = [10, 12, 9, 15, 11, 8, 14, 10, 16, 9, 12, 10, 11, 13, 15, 7]
    y1 = [4, 5, 1, 7, 6, 2, 6, 5, 8, 3, 5, 2, 4, 7, 8, 2]
    y2 = [9, 13, 9, 14, 12, 8, 13, 11, 15, 10, 12, 9, 12, 13, 14, 8]
    m1, s1 = _stats(x1)
    m2, s2 = _stats(x2)
    z = [complex(a, b) for a, b in zip(_normalise(x1, m1, s1), _normalise(x2, m2, s2))]
    v = [complex(a, b).conjugate() for a, b in zip(_normalise(y1, m1, s1), _normalise(y2, m2, s2))]
    n = 16
    zm, vm = sum(z) / n, sum(v) / n
    cov = sum((a - zm) * (b - vm) for a, b in zip(z, v)) / (n - 1)
    vz = sum(abs(a - zm) ** 2 for a in z) / (n - 1)
    vv = sum(abs(b - vm) ** 2 for b in v) / (n - 1)
    expected = abs(cov) * 2 / (vz + vv) * 2 * abs(zm) * abs(vm) / (abs(zm) ** 2 + abs(vm) ** 2)
    assert expected == pytest.approx(0.9357617938, abs=1e-10)    # the same, written down
    x = np.stack([np.reshape(x1, (4, 4)), np.reshape(x2, (4, 4))], axis=-1).astype(float)
    y = np.stack([np.reshape(y1, (4, 4)), np.reshape(y2, (4, 4))], axis=-1).astype(float)
    assert q2n(x, y, block=4, shift=4) == pytest.approx(expected, abs=1e-13)


def test_golden_band_offsets_closed_form():
    # Y = X + c_b: the normalised deviations agree, so the first two factors are 1 and
    # Q = 2|z̄||v̄|/(|z̄|²+|v̄|²) with z̄ = (1, 1), |v̄|² = Σ_b (1 + c_b/σ_b)².
    x, _ = _pair(32, 32, 2, seed=4)
    c = np.array([0.05, -0.02])
    s = x.reshape(-1, 2).std(axis=0, ddof=1)
    v2 = float(np.sum((1 + c / s) ** 2))
    expected = 2 * math.sqrt(2 * v2) / (2 + v2)
    assert q2n(x, x + c) == pytest.approx(expected, abs=1e-13)


def test_one_band_is_abs_uiqi_of_the_normalised_block():
    rng = np.random.default_rng(5)
    x = rng.random((32, 32, 1)) + 0.5
    for y in (x + 0.2 * rng.standard_normal(x.shape), 2.5 - x):      # correlated, anti-correlated
        mu, sd = x.mean(), x.std(ddof=1)
        a, b = ((x - mu) / sd + 1).ravel(), ((y - mu) / sd + 1).ravel()
        sxy = np.cov(a, b)[0, 1]
        uiqi = 4 * sxy * a.mean() * b.mean() / ((a.var(ddof=1) + b.var(ddof=1)) * (a.mean() ** 2 + b.mean() ** 2))
        assert q2n(x, y) == pytest.approx(abs(uiqi), abs=1e-13)
    assert uiqi < 0                                                     # |q| is reported


def _q2n_direct(x, y, block):
    """Per-block formula with cd_mult on every pixel (no multiplication table), one shift = block."""
    rows, cols, bands = x.shape
    n = 1 << (bands - 1).bit_length()
    values = []
    for r in range(0, rows, block):
        for c in range(0, cols, block):
            xb = x[r:r + block, c:c + block].reshape(-1, bands)
            yb = y[r:r + block, c:c + block].reshape(-1, bands)
            mu, sd = xb.mean(0), xb.std(0, ddof=1)
            z = np.ones((len(xb), n))
            w = np.ones((len(xb), n))
            z[:, :bands] = (xb - mu) / sd + 1
            w[:, :bands] = (yb - mu) / sd + 1
            v = cd_conj(w)
            zm, vm = z.mean(0), v.mean(0)
            dof = len(xb) - 1
            cov = cd_mult(z - zm, v - vm).sum(0) / dof
            vz = ((z - zm) ** 2).sum() / dof
            vv = ((v - vm) ** 2).sum() / dof
            nz, nv = np.linalg.norm(zm), np.linalg.norm(vm)
            values.append(np.linalg.norm(cov) * 2 / (vz + vv) * 2 * nz * nv / (nz ** 2 + nv ** 2))
    return float(np.mean(values))


@pytest.mark.parametrize("bands", [2, 3, 5, 8, 13])
def test_matches_direct_per_pixel_product(bands):
    x, y = _pair(48, 32, bands, noise=0.08, seed=bands)
    assert q2n(x, y, block=16, shift=16) == pytest.approx(_q2n_direct(x, y, 16), abs=1e-12)


# ------------------------------------------------------------------- padding

def test_mirror_padding_40_to_64():
    a = np.arange(40 * 40 * 2, dtype=float).reshape(40, 40, 2)
    idx = list(range(40)) + list(range(39, 15, -1))                # 39, 38, …, 16: edge included
    expected = a[np.ix_(idx, idx, [0, 1])]
    padded = mirror_pad(a, 32, 32)
    assert padded.shape == (64, 64, 2)
    np.testing.assert_array_equal(padded, expected)
    np.testing.assert_array_equal(padded[40, :40], a[39])
    np.testing.assert_array_equal(padded[:40, 40], a[:, 39])
    np.testing.assert_array_equal(padded[63, 63], a[16, 16])
    x, y = _pair(40, 40, 4)
    big_x, big_y = x[np.ix_(idx, idx, range(4))], y[np.ix_(idx, idx, range(4))]
    value, qmap = q2n_map(x, y)
    assert qmap.shape == (2, 2)
    assert value == pytest.approx(q2n(big_x, big_y), abs=1e-15)


def test_no_padding_when_size_is_a_multiple_and_blocks_count():
    a = np.zeros((64, 96, 1))
    assert mirror_pad(a) is a
    x, y = _pair(70, 33, 3)
    assert q2n_map(x, y)[1].shape == (3, 2)                           # ceil(70/32), ceil(33/32)
    assert q2n_map(x, y, 16, 8)[1].shape == (9, 5)                    # overlapping blocks
    assert q2n_map(x, y, 8, 16)[1].shape == (5, 3)                    # gaps, no padding needed


@pytest.mark.parametrize(("bands", "padded"), [(3, 4), (5, 8)])
def test_bands_zero_padded_to_power_of_two(bands, padded):
    x, y = _pair(40, 40, bands, noise=0.05)
    zeros = np.zeros((40, 40, padded - bands))
    explicit = q2n(np.concatenate([x, zeros], -1), np.concatenate([y, zeros], -1))
    assert q2n(x, y) == pytest.approx(explicit, abs=1e-14)
    # a padded band is not a neutral one: a constant non-zero band changes nothing either,
    # but dropping the fourth component (3 bands) is not the same as 2 bands
    assert q2n(x[..., :2], y[..., :2]) != pytest.approx(q2n(x, y), abs=1e-6)


# ------------------------------------------------------------------ behaviour

def test_bounded_by_one_and_degrades_with_noise():
    x, _ = _pair(64, 64, 31)
    rng = np.random.default_rng(7)
    values = [q2n(x, x + s * rng.standard_normal(x.shape)) for s in (0.005, 0.02, 0.05, 0.15, 0.4)]
    assert all(v <= 1.0 for v in values)
    assert all(a > b for a, b in itertools.pairwise(values)), values
    assert values[0] > 0.95 and values[-1] < 0.5


def test_invariant_to_common_gain_and_offset_even_with_zero_blocks():
    x, y = _pair(64, 64, 5, noise=0.05)
    x[:32, :32, 1] = 0.0                        # a reference block band of mean 0, estimate not 0
    base = q2n(x, y)
    assert q2n(1e4 * x + 3.0, 1e4 * y + 3.0) == pytest.approx(base, rel=1e-10)
    assert q2n(1e4 * x, 1e4 * y) == pytest.approx(base, rel=1e-10)
    # q2n.m's rule for that case (estimate band Y + 1, not divided by σ) depends on the scale
    matlab_1 = q2n_map(x, y, matlab_zero_mean=True)[0]
    matlab_dn = q2n_map(1e4 * x, 1e4 * y, matlab_zero_mean=True)[0]
    assert abs(matlab_1 - matlab_dn) > 1e-3
    assert matlab_dn == pytest.approx(base, abs=1e-6)  # in DN the shifted band also kills the block


def test_constant_reference_band_scores_zero_block_unless_matched():
    x, y = _pair(32, 32, 4, noise=0.02)
    x[..., 2] = 0.6
    y_same = y.copy()
    y_same[..., 2] = 0.6
    assert q2n(x, y) < 1e-10                    # σ = eps: the estimate's deviation is amplified
    assert q2n(x, y_same) > 0.9


def test_input_errors():
    x, y = _pair(40, 40, 3)
    bad = y.copy()
    bad[3, 4, 1] = np.nan
    with pytest.raises(InputError, match="estimate contains 1 NaN"):
        q2n(x, bad)
    with pytest.raises(InputError, match="shape mismatch"):
        q2n(x, y[:, :39])
    with pytest.raises(InputError, match=r"too small for 32×32 blocks.*at least 16 rows"):
        q2n(x[:12], y[:12])
    with pytest.raises(InputError, match="too small"):
        q2n(x, y, crop=13)                       # 14×14 left
    for kw in ({"block": 1}, {"shift": 0}, {"block": 8.0}, {"shift": True}):
        with pytest.raises(InputError, match="q2n (block|shift) must be an integer"):
            q2n(x, y, **kw)
    with pytest.raises(InputError, match="expected an array of shape"):
        q2n(x[..., 0], y[..., 0])


def test_crop_is_applied_first():
    x, y = _pair(72, 72, 4)
    assert q2n(x, y, crop=4) == pytest.approx(q2n(x[4:-4, 4:-4], y[4:-4, 4:-4]), abs=1e-15)


# -------------------------------------------------------------- yokoya profile

def test_matlab_uint16_rounds_half_away_from_zero_and_saturates():
    a = np.array([-3.0, -0.6, -0.4, 0.0, 0.49999999999999994, 0.5, 1.5, 2.5, 2.4999,
                  65534.5, 65535.4, 65535.6, 70000.0, 1e300])
    expected = [0, 0, 0, 0, 0, 1, 2, 3, 2, 65535, 65535, 65535, 65535, 65535]
    np.testing.assert_array_equal(matlab_uint16(a), expected)


def test_yokoya_profile_returns_q2n_on_uint16_dn():
    x, y = _pair(64, 64, 31)
    x[:32, 32:, 5] = 0.0                        # a reference block band of mean 0 (q2n.m's rule)
    rec = M.evaluate_record(x, y, 4, profile="yokoya")
    assert tuple(rec["scores"]) == ("psnr", "sam", "ergas", "q2n") == M.profile_keys("yokoya")
    assert rec["q2n_dn_scale"] == 10000.0
    dx, dy = matlab_uint16(x * 1e4), matlab_uint16(y * 1e4)
    assert rec["scores"]["q2n"] == q2n_map(dx, dy, matlab_zero_mean=True)[0]
    assert rec["scores"]["q2n"] != pytest.approx(q2n_map(dx, dy)[0], abs=1e-6)
    # close to, but not the float index (quantised to 1/10000)
    assert rec["scores"]["q2n"] == pytest.approx(q2n(x, y), abs=1e-3)
    assert rec["scores"]["q2n"] != q2n(x, y)
    # data in [0, 2] with data_range 2: the same DN, so the same value
    rec2 = M.evaluate_record(2 * x, 2 * y, 4, profile="yokoya", data_range=2.0)
    assert rec2["q2n_dn_scale"] == 5000.0
    assert rec2["scores"]["q2n"] == pytest.approx(rec["scores"]["q2n"], abs=1e-15)


def test_yokoya_q2n_casts_like_matlab_uint16():
    # data_range 10000 → dn_scale 1: the data are the DN themselves
    rng = np.random.default_rng(8)
    x = np.floor(rng.random((32, 32, 3)) * 3000 + 1000)
    y = np.floor(x + rng.normal(0, 100, x.shape))

    def yq(est):
        return M.evaluate(x, est, 4, profile="yokoya", data_range=10000.0)["q2n"]

    base = yq(y)
    assert yq(y + 0.25) == base                          # rounds down to the same DN
    assert yq(y + 0.5) == yq(y + 1.0) != base            # a half rounds away from zero: up
    assert yq(y - 0.5) == base                           # … also from below (n − ½ → n)
    assert yq(y - 0.51) == yq(y - 1.0) != base
    # values above 65535 DN saturate: only the saturated value matters
    hot = y.copy()
    hot[:8, :8] = 80000.0
    also_hot = y.copy()
    also_hot[:8, :8] = 65535.0
    assert yq(hot) == yq(also_hot)
    # the float index sees the difference
    assert q2n(x, hot) != q2n(x, also_hot)


def test_yokoya_q2n_on_unscaled_unit_data_would_degenerate():
    # why the profile converts to DN first: uint16 of [0, 1] data keeps only 0 and 1
    x, _ = _pair(64, 64, 4)
    assert set(np.unique(matlab_uint16(x))) <= {0.0, 1.0}


def test_yokoya_q2n_is_nan_below_the_padding_limit():
    x, y = _pair(12, 12, 3)
    rec = M.evaluate_record(x, y, 4, profile="yokoya")
    assert math.isnan(rec["scores"]["q2n"]) and rec["q2n_dn_scale"] == 10000.0
    assert math.isfinite(rec["scores"]["psnr"])
    assert not math.isnan(M.evaluate(*_pair(16, 16, 3), 4, profile="yokoya")["q2n"])
