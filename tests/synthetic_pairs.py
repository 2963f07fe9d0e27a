"""Small synthetic scenes and pairs for the model-based methods' tests.

A few smooth random spectra mixed by smooth abundance maps (Gaussian-filtered noise, softmax)
with sharp-edged rectangles and discs, degraded with the suite's observation model: a Gaussian
PSF of σ = s/2 and an SRF of three smooth bumps.
"""

import math

import numpy as np
from scipy import ndimage

from hmifbench.methods import FusionProblem
from hmifbench.observation import (add_noise, gaussian_psf, normalise_srf, spatial_degrade,
                                   spectral_degrade)


def make_scene(size=64, bands=31, n_end=5, seed=0):
    """A reflectance cube in [0, 1]: a few smooth random spectra mixed by smooth abundance
    maps (Gaussian-filtered noise, softmax) with sharp-edged rectangles and discs of one
    dominant material."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, bands)
    spectra = []
    for _ in range(n_end):
        sp = np.full(bands, 0.15 + 0.1 * rng.random())
        for _ in range(3):
            sp += 0.5 * rng.random() * np.exp(-0.5 * ((t - rng.random()) / (0.08 + 0.2 * rng.random())) ** 2)
        spectra.append(sp)
    spectra = np.array(spectra)
    spectra *= 0.9 / spectra.max()
    logits = np.stack([ndimage.gaussian_filter(rng.standard_normal((size, size)), size / 12, mode="wrap")
                       for _ in range(n_end)])
    logits /= logits.std(axis=(1, 2), keepdims=True)
    rr, cc = np.mgrid[:size, :size]
    for _ in range(4):
        k = rng.integers(n_end)
        if rng.random() < 0.5:
            r0, c0 = rng.integers(0, size * 3 // 4, 2)
            hgt, wid = rng.integers(size // 8, size // 3, 2)
            mask = (rr >= r0) & (rr < r0 + hgt) & (cc >= c0) & (cc < c0 + wid)
        else:
            r0, c0 = rng.integers(0, size, 2)
            mask = (rr - r0) ** 2 + (cc - c0) ** 2 < rng.integers(size // 10, size // 4) ** 2
        logits[k][mask] += 4.0
    abundances = np.exp(2.0 * logits)
    abundances /= abundances.sum(axis=0, keepdims=True)
    return np.einsum("khw,kb->hwb", abundances, spectra).astype(np.float32)


def three_bump_srf(bands=31):
    wl = np.linspace(400, 700, bands)
    return normalise_srf(np.stack([np.exp(-0.5 * ((wl - c) / 35.0) ** 2) for c in (460, 545, 610)]))


def simulate(size=64, scale=8, seed=0, border="reflect101", snr=None):
    """(truth, FusionProblem) with a Gaussian PSF of σ = s/2 and the three-bump SRF."""
    x = make_scene(size, seed=seed)
    sigma = scale / 2
    psf = gaussian_psf(2 * math.ceil(2.5 * sigma) + 1, sigma)
    srf = three_bump_srf(x.shape[2])
    lr = spatial_degrade(x, psf, scale, scale // 2 - 1, border)
    hr = spectral_degrade(x, srf)
    if snr is not None:
        rng = np.random.default_rng(seed + 1)
        lr, hr = add_noise(lr, snr, rng), add_noise(hr, snr, rng)
    return x, FusionProblem(lr, hr, scale, psf=psf, srf=srf, border=border)
