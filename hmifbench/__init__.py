"""hmifbench: a reproducible benchmark suite for hyperspectral–multispectral image fusion."""

from hmifbench.cube import Cube
from hmifbench.io import read_cube, write_cube

__version__ = "0.1.0"
__all__ = ["Cube", "read_cube", "write_cube", "__version__"]
