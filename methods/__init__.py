"""Fusion methods: the Method API and the registry.

>>> from hmifbench import methods
>>> methods.available()                       # doctest: +SKIP
['cnmf', 'fuse', 'gsa', ...]
>>> gsa = methods.get("gsa")
"""

from hmifbench.method import Fused, FusionProblem, Method, Resources, param
from hmifbench.registry import add_plugin_path, available, get, get_class, load_errors

__all__ = ["Fused", "FusionProblem", "Method", "Resources", "param", "available", "get",
           "get_class", "add_plugin_path", "load_errors"]
