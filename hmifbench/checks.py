"""The conformance checks moved to :mod:`hmifbench.conformance`; this path stays importable for
plugins and tests written against it."""

from hmifbench.conformance import *  # noqa: F401,F403
from hmifbench.conformance import __all__  # noqa: F401
