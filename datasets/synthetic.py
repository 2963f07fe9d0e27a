"""The ``synthetic`` dataset: natural-looking reflectance scenes made from real spectra.

Nothing is downloaded. A scene is made, deterministically from ``(seed, scene index)``, as
follows (all random draws from one ``numpy.random.Generator``):

1. **Materials.** ``n_materials`` reflectance spectra are drawn without replacement from the 48
   measured ColorChecker patches shipped by colour-science (``ColorChecker N Ohta`` and
   ``BabelColor Average``, 380–780 nm at 5 nm), linearly resampled to the scene's band centres
   (default 400–700 nm, 10 nm steps: 31 bands).
2. **Regions with sharp edges.** ``n_regions`` Voronoi cells whose distance field is warped by
   a smooth random displacement (Gaussian-filtered noise, σ = size/8 px, amplitude size/10 px),
   so borders are sharp but irregular. Each cell gets a primary material.
3. **Smooth mixing.** In every cell a second material is mixed in with a smooth abundance
   field (Gaussian-filtered noise, σ = size/16 px) rescaled to [0, 0.6].
4. **Objects.** ``n_objects`` discs and axis-aligned rectangles with hard edges, each of one
   material, pasted on top (occlusion, small structures).
5. **Texture at several scales.** Noise filtered at σ = 0.7, 2 and 5 px (amplitudes 0.04, 0.05,
   0.06) modulates the brightness, so there is detail at every scale the methods must recover.
6. **Shading.** A smooth illumination field (a random linear gradient plus Gaussian-filtered
   noise at σ = size/4 px) mapped to [0.45, 1.0] multiplies the reflectance.

The cube is ``shading · (1 + texture) · Σ_m a_m · spectrum_m``, clipped to [0, 1], float32.
Abundances sum to one before shading, so every pixel spectrum is a positive mix of real spectra.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from hmifbench.cube import Cube
from hmifbench.datasets.base import Dataset
from hmifbench.datasets.options import option
from hmifbench.errors import InputError

DEFAULT_WAVELENGTHS = np.arange(400.0, 701.0, 10.0)


@dataclass(frozen=True)
class SyntheticOptions:
    """The options of the ``synthetic`` dataset; also the defaults of :func:`make_scene`."""

    size: int = option(128, "side of the square scene, pixels (at least 8)")
    seed: int = option(0, "base seed: scene sceneNN is made with seed + NN")
    n_materials: int = option(10, "number of ColorChecker spectra in the scene (2 to 48)")
    n_regions: int = option(9, "number of warped Voronoi regions")
    n_objects: int = option(6, "number of hard-edged discs and rectangles pasted on top")


@lru_cache(maxsize=1)
def _colorchecker_library() -> tuple[np.ndarray, np.ndarray]:
    """(wavelengths (n,), reflectances (48, n)) from colour-science's ColorChecker data,
    on the 380–780 nm, 5 nm grid (the two charts are tabulated on different grids)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour

    nm = np.arange(380.0, 781.0, 5.0)
    spectra = []
    for chart in ("ColorChecker N Ohta", "BabelColor Average"):
        for sd in colour.SDS_COLOURCHECKERS[chart].values():
            spectra.append(np.interp(nm, np.asarray(sd.wavelengths, dtype=np.float64),
                                     np.asarray(sd.values, dtype=np.float64)))
    return nm, np.stack(spectra)


def material_library(wavelengths=DEFAULT_WAVELENGTHS) -> np.ndarray:
    """The 48 ColorChecker reflectances resampled to ``wavelengths`` (nm): (48, B) in [0, 1]."""
    nm, refl = _colorchecker_library()
    wl = np.asarray(wavelengths, dtype=np.float64)
    if wl.min() < nm.min() or wl.max() > nm.max():
        raise InputError(f"synthetic scenes cover {nm.min():.0f}–{nm.max():.0f} nm; "
                         f"requested {wl.min():.0f}–{wl.max():.0f} nm")
    return np.clip(np.stack([np.interp(wl, nm, r) for r in refl]), 0.0, 1.0)


def _smooth_noise(rng, shape, sigma):
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return f / (f.std() + 1e-12)


def _unit(f):
    return (f - f.min()) / (f.max() - f.min() + 1e-12)


def make_scene(seed: int = 0, size: int = SyntheticOptions.size, wavelengths=DEFAULT_WAVELENGTHS,
               n_materials: int = SyntheticOptions.n_materials, n_regions: int = SyntheticOptions.n_regions,
               n_objects: int = SyntheticOptions.n_objects) -> Cube:
    """Make one synthetic reflectance scene; see the module docstring for the recipe.

    Parameters
    ----------
    seed : int
        Seed of the scene; the same seed and parameters give the same cube bit for bit.
    size : int
        Side in pixels (the scene is square).
    wavelengths : array_like
        Band centres in nm, within 380–780 nm.
    n_materials, n_regions, n_objects : int
        How many spectra, Voronoi regions and pasted objects.

    Returns
    -------
    Cube
        (size, size, len(wavelengths)) float32 in [0, 1], with the wavelengths.
    """
    if size < 8:
        raise InputError(f"synthetic scene size must be >= 8, got {size}")
    library = material_library(wavelengths)
    if not 2 <= n_materials <= len(library):
        raise InputError(f"n_materials must be in [2, {len(library)}], got {n_materials}")
    rng = np.random.default_rng([seed, size, 20261125])
    spectra = library[rng.choice(len(library), n_materials, replace=False)]
    m = n_materials
    shape = (size, size)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)

    # 2. warped Voronoi regions
    warp = size / 10
    wr = rows + warp * _smooth_noise(rng, shape, size / 8)
    wc = cols + warp * _smooth_noise(rng, shape, size / 8)
    centres = rng.uniform(0, size, (n_regions, 2))
    dist = (wr[..., None] - centres[:, 0]) ** 2 + (wc[..., None] - centres[:, 1]) ** 2
    region = dist.argmin(axis=-1)
    primary = rng.integers(0, m, n_regions)
    secondary = (primary + rng.integers(1, m, n_regions)) % m
    abundance = np.zeros(shape + (m,))
    mix = 0.6 * _unit(_smooth_noise(rng, shape, size / 16))
    idx_r, idx_c = np.indices(shape)
    abundance[idx_r, idx_c, primary[region]] += 1.0 - mix
    abundance[idx_r, idx_c, secondary[region]] += mix

    # 4. hard-edged objects
    for _ in range(n_objects):
        mat = rng.integers(0, m)
        cr, cc = rng.uniform(0, size, 2)
        extent = rng.uniform(size / 32, size / 6)
        if rng.random() < 0.5:
            mask = (rows - cr) ** 2 + (cols - cc) ** 2 <= extent**2
        else:
            aspect = rng.uniform(0.3, 3.0)
            mask = (np.abs(rows - cr) <= extent) & (np.abs(cols - cc) <= extent * aspect)
        abundance[mask] = 0.0
        abundance[mask, mat] = 1.0

    # 5. multi-scale texture, 6. shading
    texture = sum(a * _smooth_noise(rng, shape, s) for a, s in ((0.04, 0.7), (0.05, 2.0), (0.06, 5.0)))
    gradient = rng.standard_normal(2)
    shading = _unit(gradient[0] * rows / size + gradient[1] * cols / size
                    + 0.5 * _smooth_noise(rng, shape, size / 4))
    shading = 0.45 + 0.55 * shading

    cube = (abundance.reshape(-1, m) @ spectra).reshape(size, size, -1)
    cube *= (shading * (1.0 + texture))[..., None]
    return Cube(np.clip(cube, 0.0, 1.0).astype(np.float32), np.asarray(wavelengths, dtype=np.float64))


class Synthetic(Dataset):
    """Scenes made by :func:`make_scene`; nothing to download.

    Scene names are ``scene01``, ``scene02``, …; scene ``sceneNN`` uses seed ``seed + NN``.
    Options: :class:`SyntheticOptions`. Splits: ``train`` = scene01–scene16, ``test`` =
    scene17–scene24 (a scene may be requested by name beyond these).
    """

    name = "synthetic"
    Options = SyntheticOptions
    # Not in datasets/registry.yaml (nothing to download), so it states its own licence.
    licence = "BSD-3-Clause (generated); spectra from colour-science (BSD-3-Clause)"

    def splits(self, root=None):
        return {"train": [f"scene{i:02d}" for i in range(1, 17)],
                "test": [f"scene{i:02d}" for i in range(17, 25)]}

    def read(self, scene, root=None, **options):
        opts = self.parse_options(options)
        if not (scene.startswith("scene") and scene[5:].isdigit()):
            raise InputError(f"synthetic scene names look like 'scene01', got {scene!r}")
        scene_seed = opts.seed + int(scene[5:])
        cube = make_scene(seed=scene_seed, size=opts.size, n_materials=opts.n_materials,
                          n_regions=opts.n_regions, n_objects=opts.n_objects)
        return cube, {"generator": "hmifbench.datasets.synthetic.make_scene", "seed": scene_seed,
                      "size": opts.size, "n_materials": opts.n_materials, "n_regions": opts.n_regions,
                      "n_objects": opts.n_objects}
