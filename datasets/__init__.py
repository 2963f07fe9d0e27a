"""Datasets, SRF tables and degradation protocols.

>>> from hmifbench.datasets import degrade
>>> pair = degrade(cube, "mossfuse-x32", seed=0)      # doctest: +SKIP
"""

from hmifbench.datasets.base import DATASETS, Dataset, get_dataset, register_dataset
from hmifbench.datasets.protocols import PROTOCOLS, Pair, Protocol, degrade, get_protocol
from hmifbench.datasets import readers as _readers  # noqa: E402,F401  registers cave, harvard, ntire2018, ncalm, wv2

__all__ = ["DATASETS", "Dataset", "get_dataset", "register_dataset", "PROTOCOLS", "Pair",
           "Protocol", "degrade", "get_protocol"]
