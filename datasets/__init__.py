"""Datasets, SRF tables and degradation protocols.

>>> from hmifbench.datasets import degrade
>>> pair = degrade(cube, "mossfuse-x32", seed=0)      # doctest: +SKIP
"""

from hmifbench.datasets.protocols import PROTOCOLS, Pair, Protocol, degrade, get_protocol

__all__ = ["PROTOCOLS", "Pair", "Protocol", "degrade", "get_protocol"]
