"""The CAVE multispectral image database (Yasuma et al., IEEE TIP 2010).

32 scenes, 512 x 512 pixels, 31 bands from 400 to 700 nm in 10 nm steps, one 16-bit PNG per
band. Record (homepage, licence, citation): ``datasets/registry.yaml``.
"""

from __future__ import annotations

import numpy as np

from hmifbench.cube import Cube
from hmifbench.datasets._png import read_png_band
from hmifbench.datasets.options import CropOptions, crop_array
from hmifbench.datasets.real import RealDataset, find_files, read_info
from hmifbench.errors import InputError

CAVE_SCENES = (
    "balloons", "beads", "cd", "chart_and_stuffed_toy", "clay", "cloth", "egyptian_statue", "face",
    "fake_and_real_beers", "fake_and_real_food", "fake_and_real_lemon_slices", "fake_and_real_lemons",
    "fake_and_real_peppers", "fake_and_real_strawberries", "fake_and_real_sushi",
    "fake_and_real_tomatoes", "feathers", "flowers", "glass_tiles", "hairs", "jelly_beans",
    "oil_painting", "paints", "photo_and_face", "pompoms", "real_and_fake_apples",
    "real_and_fake_peppers", "sponges", "stuffed_toys", "superballs", "thread_spools", "watercolors",
)

#: MossFuse's fixed CAVE test and train lists (as in the ``dataset.py`` of the MossFuse
#: repository; see docs/references.md)
CAVE_MOSSFUSE_TEST = (
    "hairs", "balloons", "real_and_fake_peppers", "stuffed_toys", "thread_spools",
    "fake_and_real_tomatoes", "fake_and_real_lemons", "egyptian_statue", "clay",
    "real_and_fake_apples", "fake_and_real_beers", "fake_and_real_peppers",
)
CAVE_MOSSFUSE_TRAIN = (
    "watercolors", "beads", "fake_and_real_sushi", "pompoms", "sponges", "cloth", "oil_painting",
    "flowers", "cd", "superballs", "fake_and_real_lemon_slices", "fake_and_real_food", "paints", "face",
    "feathers", "chart_and_stuffed_toy", "jelly_beans", "photo_and_face", "fake_and_real_strawberries",
    "glass_tiles",
)


class CAVE(RealDataset):
    """CAVE (Yasuma et al., IEEE TIP 2010): 32 scenes, 512×512×31, 400–700 nm in 10 nm steps.

    Files: ``**/<scene>_ms/<scene>_ms_01.png … _31.png`` (16-bit grey PNGs, one per band).
    Bands are read by their index in the file name, never in directory order; each band's shape
    and dtype are checked; values are divided by 65535 (as MossFuse does). Multi-channel PNGs
    (reported for ``watercolors``) are handled by :func:`~hmifbench.datasets._png.read_png_band`.

    Splits: ``all`` (32), ``mossfuse-train`` (20) and ``mossfuse-test`` (12), MossFuse's fixed
    lists; ``train``/``test`` are aliases of the MossFuse lists.
    Options: ``crop``, ``position`` (:class:`~hmifbench.datasets.options.CropOptions`); the
    value range is fixed by the format.
    """

    name = "cave"
    Options = CropOptions
    bands_nm = np.arange(400.0, 701.0, 10.0)

    def splits(self, root=None):
        # Sorted, as MossFuse's test.py sorts its list before testing.
        train, test = sorted(CAVE_MOSSFUSE_TRAIN), sorted(CAVE_MOSSFUSE_TEST)
        return {"all": list(CAVE_SCENES), "mossfuse-train": train, "mossfuse-test": test,
                "train": train, "test": test}

    def read(self, scene, root=None, **options):
        opts = self.parse_options(options)
        stem = scene if scene.endswith("_ms") else f"{scene}_ms"
        name = stem[:-3]
        hits = find_files(root, f"{stem}_01.png", f"cave/{name}", self._hint())
        if not hits:
            raise InputError(f"cave: scene {name!r} not found under {root} (looked for **/{stem}_01.png); "
                             f"{self._hint()}")
        folder = hits[0].parent
        bands, notes, shape = [], [], None
        for k in range(1, 32):
            path = folder / f"{stem}_{k:02d}.png"
            if not path.is_file():
                raise InputError(f"{path}: band {k} of scene {name!r} is missing")
            arr, quirks = read_png_band(path)
            notes += quirks
            if arr.ndim != 2:
                raise InputError(f"{path}: expected one band (rows, cols), got shape {arr.shape}")
            if shape is None:
                shape = arr.shape
            elif arr.shape != shape:
                raise InputError(f"{path}: shape {arr.shape} differs from band 1's {shape}")
            if arr.dtype == np.uint16:
                bands.append(arr.astype(np.float32) / 65535.0)
            elif arr.dtype == np.uint8:
                notes.append(f"{path.name}: 8-bit PNG, divided by 255")
                bands.append(arr.astype(np.float32) / 255.0)
            else:
                raise InputError(f"{path}: expected a 16-bit PNG, got dtype {arr.dtype}")
        x, window = crop_array(np.stack(bands, axis=2), opts.crop, opts.position)
        info = read_info("cave", name, folder / f"{stem}_01.png", root, normalisation="16-bit counts / 65535",
                         crop=window, quirks=notes)
        return Cube(np.ascontiguousarray(x), self.bands_nm), info
