"""The dataset interface and registry used by ``hmifbench prepare`` and the workflow.

A dataset turns a scene name into a ground-truth :class:`~hmifbench.Cube` (reflectance-like,
scaled to [0, 1], with wavelengths). Datasets that come from the internet are fetched by
``hmifbench download NAME`` into ``<root>/<name>/`` first; ``load`` reads from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from hmifbench.cube import Cube
from hmifbench.datasets.options import NoOptions, parse_options
from hmifbench.errors import InputError


class Dataset:
    """Base class of a dataset.

    Class attributes: ``name`` (registry key); ``splits_from_files`` (the scene lists can only
    be read from the downloaded files); ``Options`` (the options :meth:`read` takes, a frozen
    dataclass declared with :func:`~hmifbench.datasets.options.option`). A dataset with real
    (LR-HSI, HR-MSI) pairs also has a ``pair`` method and declares its options in
    ``PairOptions``.

    What a dataset is and may be used for (title, homepage, gate, licence, citation) is written
    once, in ``datasets/registry.yaml``; the properties below read it from there. A dataset
    without a registry record (made on the fly, like ``synthetic``) is not downloadable, and
    states its own licence.
    """

    name: ClassVar[str] = ""
    #: True when the scene lists can only be read from the downloaded files; the workflow
    #: then makes the download a checkpoint and lists scenes after it has run.
    splits_from_files: ClassVar[bool] = False
    Options: ClassVar[type] = NoOptions
    PairOptions: ClassVar[type | None] = None

    # ---- metadata, from datasets/registry.yaml
    @property
    def record(self):
        """This dataset's :class:`~hmifbench.datasets.download.DatasetSpec`, or None."""
        from hmifbench.datasets.download import registry

        return registry().get(self.name)

    @property
    def downloadable(self) -> bool:
        """Whether ``hmifbench download NAME`` must run before :meth:`load`."""
        return self.record is not None

    @property
    def gate(self) -> str:
        """``"none"`` (plain download), ``"terms"`` (only with ``--accept-terms NAME``) or
        ``"manual"`` (the user places the files)."""
        return self.record.gate if self.record else "none"

    @property
    def title(self) -> str:
        return self.record.title if self.record else ""

    @property
    def licence(self) -> str:
        return self.record.licence if self.record else ""

    @property
    def citation(self) -> str:
        return self.record.citation if self.record else ""

    # ---- scenes
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

    def parse_options(self, options: dict, pair: bool = False):
        """``options`` checked against ``Options`` (``PairOptions`` when ``pair``), as an
        instance of it with every default filled in; :class:`InputError` names bad ones."""
        if pair and self.PairOptions is None:
            raise InputError(f"dataset {self.name!r} has no real pairs")
        return parse_options(self.name, self.PairOptions if pair else self.Options, options)

    def load(self, scene: str, root: Path | None = None, **options) -> Cube:
        """The ground-truth cube of ``scene`` (reflectance-like, in [0, 1], with wavelengths)."""
        return self.read(scene, root, **options)[0]

    def read(self, scene: str, root: Path | None = None, **options) -> tuple[Cube, dict]:
        """Like :meth:`load`, plus a record of how the cube was made (source file,
        normalisation factor, crop), which ``hmifbench prepare`` keeps beside the scene."""
        raise NotImplementedError


DATASETS: dict[str, Dataset] = {}


def register_dataset(dataset: Dataset) -> Dataset:
    """Add ``dataset`` to :data:`DATASETS` under its name (the built-ins are listed in
    ``hmifbench/datasets/__init__.py``); returns it."""
    DATASETS[dataset.name] = dataset
    return dataset


def get_dataset(name: str) -> Dataset:
    """The registered dataset ``name``; :class:`InputError` listing the known ones otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise InputError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}") from None
