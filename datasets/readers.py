"""The former home of the dataset readers, kept so that existing imports keep working.

Each dataset now has its own module (:mod:`~hmifbench.datasets.cave`,
:mod:`~hmifbench.datasets.harvard`, :mod:`~hmifbench.datasets.ntire2018`,
:mod:`~hmifbench.datasets.ncalm`, :mod:`~hmifbench.datasets.wv2`); the option helpers are in
:mod:`hmifbench.datasets.options`, the base class in :mod:`hmifbench.datasets.real`. Import
from those; this module only re-exports the names it used to define.
"""

from hmifbench.datasets._png import decode_png, png_header, read_png_band
from hmifbench.datasets.cave import CAVE, CAVE_MOSSFUSE_TEST, CAVE_MOSSFUSE_TRAIN, CAVE_SCENES
from hmifbench.datasets.harvard import Harvard
from hmifbench.datasets.ncalm import CASI_WAVELENGTHS, NCALM, ncalm_tiles
from hmifbench.datasets.ntire2018 import NTIRE2018
from hmifbench.datasets.options import crop_array, crop_window, normalisation_factor, parse_crop
from hmifbench.datasets.real import RealDataset
from hmifbench.datasets.wv2 import WV2, WV2_WAVELENGTHS

__all__ = ["CASI_WAVELENGTHS", "CAVE", "CAVE_MOSSFUSE_TEST", "CAVE_MOSSFUSE_TRAIN", "CAVE_SCENES",
           "Harvard", "NCALM", "NTIRE2018", "RealDataset", "WV2", "WV2_WAVELENGTHS", "crop_array",
           "crop_window", "decode_png", "ncalm_tiles", "normalisation_factor", "parse_crop",
           "png_header", "read_png_band"]
