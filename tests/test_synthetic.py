"""The synthetic dataset: deterministic, in range, with structure at several scales."""

import numpy as np
import pytest

from hmifbench.datasets import get_dataset
from hmifbench.datasets.synthetic import make_scene
from hmifbench.errors import InputError


def test_scene_is_deterministic_and_seed_dependent():
    a, b, c = make_scene(1, 48), make_scene(1, 48), make_scene(2, 48)
    np.testing.assert_array_equal(a.data, b.data)
    assert np.abs(a.data - c.data).mean() > 0.01


def test_scene_shape_range_and_wavelengths(scene64):
    assert scene64.shape == (64, 64, 31)
    assert scene64.data.dtype == np.float32
    assert 0.0 <= scene64.data.min() and scene64.data.max() <= 1.0
    np.testing.assert_array_equal(scene64.wavelengths, np.arange(400, 701, 10))


def test_scene_has_edges_and_texture(scene64):
    band = scene64.data[:, :, 15].astype(np.float64)
    grad = np.hypot(*np.gradient(band))
    # sharp edges: a few pixels with large gradients; texture: most pixels with small ones
    assert np.percentile(grad, 99.5) > 5 * np.median(grad) > 0
    # spectra are not all the same shape (several materials)
    spectra = scene64.data.reshape(-1, 31)
    normed = spectra / np.linalg.norm(spectra, axis=1, keepdims=True)
    assert np.linalg.svd(normed[::7], compute_uv=False)[2] > 1.0


def test_dataset_scene_names_and_options():
    ds = get_dataset("synthetic")
    assert ds.scenes("test")[0] == "scene17" and len(ds.scenes("train")) == 16
    np.testing.assert_array_equal(ds.load("scene02", size=32).data, make_scene(2, 32).data)
    with pytest.raises(InputError, match="look like 'scene01'"):
        ds.load("balloons")
