"""The Method API, re-exported for plugins written against ``hmifbench.methods.base``.

Its home is :mod:`hmifbench.method` (the core's base layer).
"""

from hmifbench.method import Fused, FusionProblem, Method, Resources, param

__all__ = ["Fused", "FusionProblem", "Method", "Resources", "param"]
