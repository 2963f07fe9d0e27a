"""The dataset interface and registry used by ``hmifbench prepare`` and the workflow.

A dataset turns a scene name into a ground-truth :class:`~hmifbench.Cube` (reflectance-like,
scaled to [0, 1], with wavelengths). Datasets that come from the internet are fetched by
``hmifbench download NAME`` into ``<root>/<name>/`` first; ``load`` reads from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from hmifbench.cube import Cube
from hmifbench.errors import InputError


class Dataset:
    """Base class of a dataset.

    name : registry key; gate : ``"none"`` (plain download), ``"terms"`` (download only with
    ``--accept-terms NAME``) or ``"manual"`` (the user places the files); downloadable :
    whether ``hmifbench download`` must run before ``load``; splits : named scene lists.
    """

    name: ClassVar[str] = ""
    gate: ClassVar[str] = "none"
    downloadable: ClassVar[bool] = True
    #: True when the scene lists can only be read from the downloaded files; the workflow
    #: then makes the download a checkpoint and lists scenes after it has run.
    splits_from_files: ClassVar[bool] = False
    licence: ClassVar[str] = ""
    citation: ClassVar[str] = ""

    def splits(self, root=None) -> dict[str, list[str]]:
        """Named scene lists; datasets whose lists come from their files need ``root``."""
        return {}

    def scenes(self, split: str | None = None, root=None) -> list[str]:
        """Scene names of ``split`` (all scenes when None)."""
        splits = self.splits(root)
        if split is None:
            return sorted({s for names in splits.values() for s in names})
        try:
            return list(splits[split])
        except KeyError:
            hint = " (its splits are read from the files: give root=)" if root is None and self.splits_from_files else ""
            raise InputError(f"dataset {self.name!r} has no split {split!r}; "
                             f"splits: {sorted(splits)}{hint}") from None

    def load(self, scene: str, root: Path | None = None, **options) -> Cube:
        """The ground-truth cube of ``scene`` (reflectance-like, in [0, 1], with wavelengths)."""
        return self.read(scene, root, **options)[0]

    def read(self, scene: str, root: Path | None = None, **options) -> tuple[Cube, dict]:
        """Like :meth:`load`, plus a record of how the cube was made (source file,
        normalisation factor, crop), which ``hmifbench prepare`` keeps beside the scene."""
        raise NotImplementedError


class Synthetic(Dataset):
    """Scenes made by :func:`hmifbench.datasets.synthetic.make_scene`; nothing to download.

    Scene names are ``scene01``, ``scene02``, …; scene ``sceneNN`` uses seed
    ``seed + NN`` (``seed`` is an option, default 0). Options: ``size`` (default 128),
    ``seed``, ``n_materials``, ``n_regions``, ``n_objects``. Splits: ``train`` =
    scene01–scene16, ``test`` = scene17–scene24 (a scene may be requested by name beyond these).
    """

    name = "synthetic"
    downloadable = False
    licence = "BSD-3-Clause (generated); spectra from colour-science (BSD-3-Clause)"

    def splits(self, root=None):
        return {"train": [f"scene{i:02d}" for i in range(1, 17)],
                "test": [f"scene{i:02d}" for i in range(17, 25)]}

    def read(self, scene, root=None, size=128, seed=0, **options):
        from hmifbench.datasets.synthetic import make_scene

        if not (scene.startswith("scene") and scene[5:].isdigit()):
            raise InputError(f"synthetic scene names look like 'scene01', got {scene!r}")
        scene_seed = int(seed) + int(scene[5:])
        cube = make_scene(seed=scene_seed, size=int(size), **options)
        return cube, {"generator": "hmifbench.datasets.synthetic.make_scene", "seed": scene_seed,
                      "size": int(size), **options}


DATASETS: dict[str, Dataset] = {}


def register_dataset(dataset: Dataset) -> Dataset:
    DATASETS[dataset.name] = dataset
    return dataset


def get_dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise InputError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}") from None


register_dataset(Synthetic())
