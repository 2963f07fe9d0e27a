"""Datasets, SRF tables and degradation protocols.

>>> from hmifbench.datasets import degrade
>>> pair = degrade(cube, "mossfuse-x32", seed=0)      # doctest: +SKIP

The built-in datasets are registered from the explicit list :data:`BUILTIN_DATASETS`; a
plugin adds its own with :func:`register_dataset`.
"""

from hmifbench.datasets.base import DATASETS, Dataset, get_dataset, register_dataset
from hmifbench.datasets.cave import CAVE
from hmifbench.datasets.harvard import Harvard
from hmifbench.datasets.ncalm import NCALM
from hmifbench.datasets.ntire2018 import NTIRE2018
from hmifbench.datasets.options import config_option_errors
from hmifbench.datasets.protocols import PROTOCOLS, Pair, Protocol, degrade, get_protocol
from hmifbench.datasets.synthetic import Synthetic
from hmifbench.datasets.wv2 import WV2

#: The datasets that ship with hmifbench, in the order ``hmifbench`` lists them.
BUILTIN_DATASETS = (Synthetic, CAVE, Harvard, NTIRE2018, NCALM, WV2)

for _cls in BUILTIN_DATASETS:
    register_dataset(_cls())

__all__ = ["BUILTIN_DATASETS", "DATASETS", "Dataset", "get_dataset", "register_dataset", "PROTOCOLS",
           "Pair", "Protocol", "degrade", "get_protocol", "config_option_errors"]
