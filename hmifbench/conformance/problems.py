"""The tiny simulated problems every conformance check runs on."""

from __future__ import annotations

import dataclasses

import numpy as np


#: (rows, cols, HSI bands) of the problems; scale 4, 3 MSI bands (Nikon D700 SRF).
PROBLEMS = {
    "standard": {True: (32, 32, 16), False: (64, 64, 31)},  # keyed by quick
    "odd": {True: (24, 40, 7), False: (24, 40, 7)},
}
PROTOCOL = "gauss-fwhm-x4"
TRAIN_SEEDS = (101, 102)


def make_problem(rows: int, cols: int, bands: int, *, scene_seed: int = 0, setting: str = "known"):
    """A small simulated problem and its reference, made with the suite's own pipeline.

    A synthetic scene (:func:`hmifbench.datasets.synthetic.make_scene`, bands evenly spaced over
    400–700 nm) is cropped to ``rows × cols`` and degraded with protocol ``gauss-fwhm-x4``.

    Returns
    -------
    problem : FusionProblem
        With the true PSF and SRF when ``setting="known"``, without them when ``"blind"``.
    reference : ndarray (rows, cols, bands)
    """
    from hmifbench.cube import Cube
    from hmifbench.datasets.protocols import degrade
    from hmifbench.datasets.synthetic import make_scene
    from hmifbench.method import FusionProblem

    wavelengths = np.linspace(400.0, 700.0, bands)
    scene = make_scene(seed=scene_seed, size=max(rows, cols, 8), wavelengths=wavelengths)
    truth = np.ascontiguousarray(scene.data[:rows, :cols])
    pair = degrade(Cube(truth, wavelengths), PROTOCOL)
    t = pair.truth
    known = setting == "known"
    problem = FusionProblem(pair.lr_hsi, pair.hr_msi, t["scale"], wavelengths=wavelengths,
                            psf=t["psf"] if known else None, srf=t["srf"] if known else None,
                            offset=t["offset"], border=t["border"])
    return problem, truth


def _copy_problem(problem, **changes):
    """A copy whose arrays the method may not share with anything we compare against."""
    return dataclasses.replace(problem, lr_hsi=problem.lr_hsi.copy(), hr_msi=problem.hr_msi.copy(),
                               **changes)
