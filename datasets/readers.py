"""Readers of the real datasets: each source format to a :class:`~hmifbench.Cube` with wavelengths.

Every dataset here is a :class:`~hmifbench.datasets.base.Dataset` registered under its name.
``load(scene, root, **options)`` returns the ground-truth cube; ``read(...)`` returns
``(cube, info)`` where ``info`` records what was done (source file, normalisation and its
factor, crop, quirks met) so that ``hmifbench prepare`` can store it with the cube. ``root`` is
the dataset's folder, ``<data root>/<name>`` (what ``hmifbench download`` filled).

Options arrive from the command line as strings and are parsed here:

``crop``
    ``512`` (square), ``512x256`` (rows x cols) or a pair; none by default (the whole image).
``position``
    Where the crop sits: ``topleft`` (default), ``centre`` or ``ROW,COL`` (top-left corner).
``normalise``
    How values are scaled to [0, 1], where the format does not fix it (Harvard, NTIRE2018,
    NCALM, WV-2): ``max`` (divide by the image's global maximum *before* cropping, the usual
    HMIF choice), ``none``, or a number to divide by. The factor is recorded in ``info``.

Bad or missing files raise :class:`~hmifbench.errors.InputError` naming the file and the problem.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np

from hmifbench.cube import Cube
from hmifbench.datasets.base import Dataset
from hmifbench.errors import InputError

CAVE_SCENES = (
    "balloons", "beads", "cd", "chart_and_stuffed_toy", "clay", "cloth", "egyptian_statue", "face",
    "fake_and_real_beers", "fake_and_real_food", "fake_and_real_lemon_slices", "fake_and_real_lemons",
    "fake_and_real_peppers", "fake_and_real_strawberries", "fake_and_real_sushi",
    "fake_and_real_tomatoes", "feathers", "flowers", "glass_tiles", "hairs", "jelly_beans",
    "oil_painting", "paints", "photo_and_face", "pompoms", "real_and_fake_apples",
    "real_and_fake_peppers", "sponges", "stuffed_toys", "superballs", "thread_spools", "watercolors",
)

#: MossFuse's fixed CAVE lists (dusongcheng/MossFuse dataset.py; research/mossfuse.md §6)
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

#: DFC2018 CASI band centres (nm) of the 48 spectral bands of 20170218_UH_CASI_S4_NAD83.pix, as
#: listed by songyz2019/rs-fusion-datasets (Apache-2.0), core/_fetch_houston2018.py; used when
#: the file itself carries no wavelengths. Not verified against the file here.
CASI_WAVELENGTHS = np.array([
    374.4, 388.7, 403.1, 417.4, 431.7, 446.1, 460.4, 474.7, 489.0, 503.4, 517.7, 532.0,
    546.3, 560.6, 574.9, 589.2, 603.6, 617.9, 632.2, 646.5, 660.8, 675.1, 689.4, 703.7,
    718.0, 732.3, 746.6, 760.9, 775.2, 789.5, 803.8, 818.1, 832.4, 846.7, 861.1, 875.4,
    889.7, 904.0, 918.3, 932.6, 946.9, 961.2, 975.5, 989.8, 1004.2, 1018.5, 1032.8, 1047.1])

#: WorldView-2 nominal band centres (nm): coastal, blue, green, yellow, red, red edge, NIR1,
#: NIR2 (DigitalGlobe WorldView-2 specifications; used when the GeoTIFF has no wavelengths).
WV2_WAVELENGTHS = np.array([427.0, 478.0, 546.0, 608.0, 659.0, 724.0, 831.0, 908.0])


# --------------------------------------------------------------------------- option parsing

def parse_crop(crop) -> tuple[int, int] | None:
    """``None``, ``512``, ``"512"``, ``"512x256"`` or ``(512, 256)`` to ``(rows, cols)``."""
    if crop is None or crop == "" or (isinstance(crop, str) and crop.lower() in ("none", "full")):
        return None
    try:
        if isinstance(crop, str):
            parts = [int(p) for p in re.split(r"[x×,]", crop.strip())]
        elif np.ndim(crop) == 0:
            parts = [int(crop)]
        else:
            parts = [int(p) for p in crop]
    except (TypeError, ValueError):
        raise InputError(f"crop must be N or RxC (pixels), got {crop!r}") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 1:
        raise InputError(f"crop must be N or RxC with positive sizes, got {crop!r}")
    return parts[0], parts[1]


def crop_window(shape, crop, position="topleft") -> tuple[int, int, int, int]:
    """The window ``(row0, col0, rows, cols)`` of a crop inside an image of ``shape``."""
    size = parse_crop(crop)
    rows, cols = int(shape[0]), int(shape[1])
    if size is None:
        return 0, 0, rows, cols
    h, w = size
    if h > rows or w > cols:
        raise InputError(f"crop {h}x{w} is larger than the image {rows}x{cols}")
    pos = position if not isinstance(position, str) else position.strip().lower()
    if pos in ("topleft", "top-left", "tl"):
        r0, c0 = 0, 0
    elif pos in ("centre", "center", "c"):
        r0, c0 = (rows - h) // 2, (cols - w) // 2
    else:
        try:
            r0, c0 = ([int(v) for v in pos.split(",")] if isinstance(pos, str) else [int(v) for v in pos])
        except (TypeError, ValueError):
            raise InputError(f"position must be topleft, centre or ROW,COL; got {position!r}") from None
    if r0 < 0 or c0 < 0 or r0 + h > rows or c0 + w > cols:
        raise InputError(f"crop {h}x{w} at ({r0}, {c0}) does not fit the image {rows}x{cols}")
    return r0, c0, h, w


def crop_array(x: np.ndarray, crop=None, position="topleft") -> tuple[np.ndarray, dict | None]:
    r0, c0, h, w = crop_window(x.shape, crop, position)
    if (h, w) == x.shape[:2]:
        return x, None
    return x[r0:r0 + h, c0:c0 + w], {"row": r0, "col": c0, "rows": h, "cols": w,
                                     "of": [int(x.shape[0]), int(x.shape[1])]}


def normalisation_factor(x: np.ndarray, normalise, where: str) -> tuple[float, str]:
    """The divisor for ``normalise`` (``max``, ``none`` or a number) and its description."""
    mode = str(normalise).strip().lower()
    if mode == "max":
        peak = float(np.max(x))
        if not peak > 0:
            raise InputError(f"{where}: the image is all zeros or negative (max {peak}); cannot normalise")
        return peak, "divided by the image's global maximum (before cropping)"
    if mode == "none":
        return 1.0, "values as stored"
    try:
        value = float(mode)
    except ValueError:
        raise InputError(f"normalise must be 'max', 'none' or a number, got {normalise!r}") from None
    if not value > 0:
        raise InputError(f"normalise divisor must be > 0, got {value}")
    return value, f"divided by {value:g}"


def _find(root: Path, pattern: str, what: str, hint: str) -> list[Path]:
    if root is None:
        raise InputError(f"{what}: no dataset folder given (root=None)")
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{what}: dataset folder {root} does not exist; {hint}")
    hits = sorted(p for p in root.rglob(pattern)
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    return hits


def _finite(x: np.ndarray, path: Path) -> np.ndarray:
    if not np.isfinite(x).all():
        raise InputError(f"{path}: {int(np.size(x) - np.isfinite(x).sum())} NaN or infinite values")
    return x


# --------------------------------------------------------------------------- PNG (16-bit aware)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_header(path: Path) -> tuple[int, int, int, int]:
    """``(width, height, bit_depth, colour_type)`` from a PNG's IHDR chunk."""
    with open(path, "rb") as fh:
        head = fh.read(33)
    if head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR" or len(head) < 26:
        raise InputError(f"{path}: not a PNG file (or one cut short before its header ends)")
    width, height, depth, ctype = struct.unpack(">IIBB", head[16:26])
    return width, height, depth, ctype


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(path: Path) -> np.ndarray:
    """Decode a non-interlaced 8- or 16-bit grey/RGB/RGBA PNG with numpy and zlib only.

    Pillow decodes 16-bit RGB PNGs to 8 bits, which would silently drop the low byte of such a
    CAVE band; this decoder keeps every bit (slow for Average/Paeth-filtered rows, so it is
    used only for those files). Returns (rows, cols) or (rows, cols, channels), uint8/uint16.
    """
    data = Path(path).read_bytes()
    if data[:8] != _PNG_SIGNATURE:
        raise InputError(f"{path}: not a PNG file")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        if pos + 8 > len(data):
            raise InputError(f"{path}: truncated PNG")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            if len(body) != 13:
                raise InputError(f"{path}: PNG header chunk has {len(body)} bytes, not 13")
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if ihdr is None:
        raise InputError(f"{path}: PNG without IHDR")
    width, height, depth, ctype, _, _, interlace = ihdr
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if channels is None or depth not in (8, 16) or interlace:
        raise InputError(f"{path}: unsupported PNG (colour type {ctype}, {depth} bits, interlace {interlace})")
    if width < 1 or height < 1:
        raise InputError(f"{path}: PNG header declares a {width} x {height} image")
    bpp = channels * depth // 8
    stride = width * bpp
    expected = height * (stride + 1)
    if expected > 1 << 32:
        raise InputError(f"{path}: PNG header declares a {width} x {height} image ({expected} bytes), "
                         "more than this decoder reads (4 GiB)")
    try:
        # Inflate at most one byte more than the header declares: a small file that inflates to
        # gigabytes (or a header declaring a huge image over a small stream) is refused, not held.
        inflater = zlib.decompressobj()
        raw = inflater.decompress(b"".join(idat), expected + 1)
    except zlib.error as err:
        raise InputError(f"{path}: corrupt PNG data ({err})") from None
    if len(raw) != expected:
        raise InputError(f"{path}: PNG data inflates to {'more than ' if len(raw) > expected else ''}"
                         f"{len(raw)} bytes, but its header declares {expected}")
    raw = np.frombuffer(raw, dtype=np.uint8)
    rows = raw.reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    prior = np.zeros(stride, dtype=np.uint8)
    for r in range(height):
        ftype, line = rows[r, 0], rows[r, 1:]
        if ftype == 0:
            cur = line.copy()
        elif ftype == 1:  # Sub: a running sum per byte position within a pixel
            cur = (np.cumsum(line.reshape(width, bpp).astype(np.int64), axis=0) % 256).astype(np.uint8).ravel()
        elif ftype == 2:  # Up
            cur = line + prior
        elif ftype in (3, 4):
            cur = bytearray(line.tobytes())
            up = prior.tobytes()
            for i in range(stride):
                left = cur[i - bpp] if i >= bpp else 0
                if ftype == 3:
                    cur[i] = (cur[i] + ((left + up[i]) >> 1)) & 0xFF
                else:
                    upleft = up[i - bpp] if i >= bpp else 0
                    cur[i] = (cur[i] + _paeth(left, up[i], upleft)) & 0xFF
            cur = np.frombuffer(bytes(cur), dtype=np.uint8)
        else:
            raise InputError(f"{path}: bad PNG filter type {ftype} in row {r}")
        out[r] = cur
        prior = out[r]
    if depth == 16:
        img = out.view(">u2").astype(np.uint16).reshape(height, width, channels)
    else:
        img = out.reshape(height, width, channels)
    return img[:, :, 0] if channels == 1 else img


def read_png_band(path: Path) -> tuple[np.ndarray, list[str]]:
    """One CAVE band as a 2-D integer array, and notes on any quirk met.

    Grey PNGs go through Pillow (exact for 8 and 16 bits). Multi-channel PNGs (the reported
    ``watercolors`` quirk) are decoded bit-exactly (OpenCV when installed, else
    :func:`decode_png`); identical colour channels give that channel, differing ones the
    ITU-R BT.601 luma (what MATLAB's ``rgb2gray`` computes), and the note says which.
    """
    path = Path(path)
    _, _, depth, ctype = png_header(path)
    if depth not in (8, 16):   # Pillow would give a 1-bit band as booleans
        raise InputError(f"{path}: a {depth}-bit PNG; a band must be 8- or 16-bit")
    notes = []
    if ctype == 0:
        from PIL import Image

        try:
            with Image.open(path) as im:
                arr = np.array(im)
        except Exception as err:  # Pillow raises many types for broken files
            raise InputError(f"{path}: cannot decode PNG ({err})") from None
        if depth == 16:
            arr = arr.astype(np.uint16)
        return arr, notes
    if ctype in (2, 4, 6):
        arr = _decode_multichannel(path)
        colour = arr[:, :, :3] if arr.shape[2] >= 3 else arr[:, :, :1]
        if arr.shape[2] in (2, 4):
            notes.append(f"{path.name}: alpha channel ignored")
        if all(np.array_equal(colour[:, :, 0], colour[:, :, k]) for k in range(1, colour.shape[2])):
            notes.append(f"{path.name}: {arr.shape[2]}-channel PNG with identical channels; channel 0 used")
            return colour[:, :, 0], notes
        luma = colour[:, :, :3].astype(np.float64) @ np.array([0.2989, 0.5870, 0.1140])
        notes.append(f"{path.name}: {arr.shape[2]}-channel PNG with differing channels; BT.601 luma used")
        return np.round(luma).astype(arr.dtype), notes
    raise InputError(f"{path}: unsupported PNG colour type {ctype} (palette?)")


def _decode_multichannel(path: Path) -> np.ndarray:
    try:
        import cv2
    except ImportError:
        return decode_png(path)
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise InputError(f"{path}: cannot decode PNG")
    if arr.ndim == 3:  # OpenCV's channel order is BGR(A)
        arr = arr[:, :, [2, 1, 0, 3][: arr.shape[2]]] if arr.shape[2] >= 3 else arr
    return arr if arr.ndim == 3 else arr[:, :, None]


# --------------------------------------------------------------------------- base class

class RealDataset(Dataset):
    """A dataset read from files under ``root`` (``<data root>/<name>``)."""

    bands_nm: np.ndarray | None = None
    hint = "run `hmifbench download NAME` first"

    def read(self, scene: str, root=None, **options) -> tuple[Cube, dict]:
        raise NotImplementedError

    def _hint(self):
        return self.hint.replace("NAME", self.name)


def _info(dataset, scene, path, root, **more) -> dict:
    try:
        rel = str(Path(path).relative_to(root))
    except ValueError:
        rel = str(path)
    return {"dataset": dataset, "scene": scene, "source": rel, **more}


# --------------------------------------------------------------------------- CAVE

class CAVE(RealDataset):
    """CAVE (Yasuma et al., IEEE TIP 2010): 32 scenes, 512×512×31, 400–700 nm in 10 nm steps.

    Files: ``**/<scene>_ms/<scene>_ms_01.png … _31.png`` (16-bit grey PNGs, one per band).
    Bands are read by their index in the file name, never in directory order; each band's shape
    and dtype are checked; values are divided by 65535 (as MossFuse does). Multi-channel PNGs
    (reported for ``watercolors``) are handled by :func:`read_png_band`.

    Splits: ``all`` (32), ``mossfuse-train`` (20) and ``mossfuse-test`` (12), MossFuse's fixed
    lists; ``train``/``test`` are aliases of the MossFuse lists.
    Options: ``crop``, ``position`` (see the module notes).
    """

    name = "cave"
    gate = "none"
    licence = "research use, cite Yasuma et al. 2010; not redistributed"
    citation = "F. Yasuma, T. Mitsunaga, D. Iso, S. K. Nayar, IEEE TIP 19(9), 2010"
    bands_nm = np.arange(400.0, 701.0, 10.0)

    def splits(self, root=None):
        # Sorted, as MossFuse's test.py sorts its list before testing.
        train, test = sorted(CAVE_MOSSFUSE_TRAIN), sorted(CAVE_MOSSFUSE_TEST)
        return {"all": list(CAVE_SCENES), "mossfuse-train": train, "mossfuse-test": test,
                "train": train, "test": test}

    def read(self, scene, root=None, crop=None, position="topleft", **options):
        if options:
            raise InputError(f"cave: unknown options {sorted(options)}; use crop, position")
        stem = scene if scene.endswith("_ms") else f"{scene}_ms"
        name = stem[:-3]
        hits = _find(root, f"{stem}_01.png", f"cave/{name}", self._hint())
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
        x, window = crop_array(np.stack(bands, axis=2), crop, position)
        info = _info("cave", name, folder / f"{stem}_01.png", root, normalisation="16-bit counts / 65535",
                     crop=window, quirks=notes)
        return Cube(np.ascontiguousarray(x), self.bands_nm), info


# --------------------------------------------------------------------------- Harvard

class Harvard(RealDataset):
    """Harvard (Chakrabarti & Zickler, CVPR 2011): 1040×1392×31, 420–720 nm in 10 nm steps.

    Files: ``**/<scene>.mat`` (MATLAB v5), key ``ref`` (float, not normalised), ``lbl`` (mask
    of unreliable regions, not applied). Normalisation (option ``normalise``, default ``max``):
    each image divided by its own global maximum, as most HMIF code does; the factor is
    recorded in ``info["scale_factor"]`` so the original values can be restored.

    Splits (need ``root``; file names were not verifiable offline): ``daylight`` (files under
    ``CZ_hsdb``), ``indoor`` (under ``CZ_hsdbi``), ``test`` = every 5th daylight image in sorted
    order (10 of 50), ``train`` = the other daylight images.
    """

    name = "harvard"
    splits_from_files = True  # scene lists are read from the downloaded files
    gate = "none"
    licence = "research use with citation"
    citation = "A. Chakrabarti, T. Zickler, CVPR 2011"
    bands_nm = np.arange(420.0, 721.0, 10.0)

    def splits(self, root=None):
        if root is None or not Path(root).is_dir():
            return {}
        files = _find(root, "*.mat", "harvard", self._hint())
        day = sorted(p.stem for p in files if "CZ_hsdb" in p.parts)
        indoor = sorted(p.stem for p in files if "CZ_hsdbi" in p.parts)
        return {"daylight": day, "indoor": indoor, "test": day[::5],
                "train": [s for i, s in enumerate(day) if i % 5], "all": sorted(day + indoor)}

    def read(self, scene, root=None, crop=None, position="topleft", normalise="max", **options):
        if options:
            raise InputError(f"harvard: unknown options {sorted(options)}; use crop, position, normalise")
        import scipy.io

        hits = _find(root, f"{scene}.mat", f"harvard/{scene}", self._hint())
        if not hits:
            raise InputError(f"harvard: scene {scene!r} not found under {root} (looked for **/{scene}.mat); "
                             f"{self._hint()}")
        path = hits[0]
        try:
            mat = scipy.io.loadmat(path, variable_names=("ref", "lbl"))
        except Exception as err:  # scipy raises ValueError, MatReadError, NotImplementedError (v7.3) …
            raise InputError(f"{path}: cannot read as a MATLAB v5 file ({err})") from None
        if "ref" not in mat:
            raise InputError(f"{path}: no variable 'ref' (found {sorted(k for k in mat if not k.startswith('__'))})")
        ref = np.asarray(mat["ref"])
        if ref.ndim != 3 or ref.shape[2] != 31:
            raise InputError(f"{path}: 'ref' must be rows x cols x 31, got shape {ref.shape}")
        if not np.issubdtype(ref.dtype, np.number):
            raise InputError(f"{path}: 'ref' has dtype {ref.dtype}")
        ref = _finite(ref.astype(np.float64), path)
        factor, how = normalisation_factor(ref, normalise, str(path))
        x, window = crop_array(ref / factor, crop, position)
        info = _info("harvard", scene, path, root, normalisation=how, scale_factor=factor,
                     crop=window, mask_lbl="present, not applied" if "lbl" in mat else "absent")
        return Cube(np.ascontiguousarray(x, dtype=np.float32), self.bands_nm), info


# --------------------------------------------------------------------------- NTIRE 2018

def _read_mat73(path: Path, key: str) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            keys = sorted(f.keys())
            if key not in f:
                extra = (" (this looks like NTIRE 2020/2022 ARAD data, a different dataset)"
                         if "cube" in f else "")
                raise InputError(f"{path}: no variable {key!r} (found {keys}){extra}")
            arr = np.asarray(f[key][()])
            bands = np.asarray(f["bands"][()]).ravel() if "bands" in f else None
    except OSError as err:
        raise InputError(f"{path}: cannot read as MATLAB v7.3 / HDF5 ({err})") from None
    return arr, bands, keys


class NTIRE2018(RealDataset):
    """NTIRE 2018 spectral reconstruction data (BGU/ICVL): 31 bands, 400–700 nm in 10 nm steps.

    Files: ``**/<scene>.mat`` (e.g. ``BGU_HS_00001.mat``), MATLAB v7.3 (HDF5) read with h5py,
    key ``rad`` (radiance). HDF5 stores MATLAB's column-major array with reversed axes, so the
    array is transposed (2, 1, 0) back to rows x cols x bands. A ``bands`` variable, when
    present, gives the wavelengths. Normalisation: option ``normalise`` (default ``max``, per
    image; recorded). Gate: manual (the challenge copy needs a login).

    Splits (need ``root``): ``train`` (files under a folder whose name contains "Train"),
    ``validate`` (contains "Valid"), ``all``.
    """

    name = "ntire2018"
    splits_from_files = True  # scene lists are read from the downloaded files
    gate = "manual"
    licence = "non-commercial research use"
    citation = "B. Arad, O. Ben-Shahar, R. Timofte et al., CVPRW 2018"
    bands_nm = np.arange(400.0, 701.0, 10.0)
    hint = "place the files by hand and run `hmifbench download ntire2018 --verify`"

    def splits(self, root=None):
        if root is None or not Path(root).is_dir():
            return {}
        files = _find(root, "*.mat", "ntire2018", self._hint())
        def under(word):
            return sorted(p.stem for p in files if any(word in part.lower() for part in p.parts[:-1]))
        return {"train": under("train"), "validate": under("valid"), "all": sorted(p.stem for p in files)}

    def read(self, scene, root=None, crop=None, position="topleft", normalise="max", **options):
        if options:
            raise InputError(f"ntire2018: unknown options {sorted(options)}; use crop, position, normalise")
        hits = _find(root, f"{scene}.mat", f"ntire2018/{scene}", self._hint())
        if not hits:
            raise InputError(f"ntire2018: scene {scene!r} not found under {root} "
                             f"(looked for **/{scene}.mat); {self._hint()}")
        path = hits[0]
        with open(path, "rb") as fh:
            head = fh.read(520)
        if head[512:520] == b"\x89HDF\r\n\x1a\n" or head[:8] == b"\x89HDF\r\n\x1a\n":
            raw, bands, _ = _read_mat73(path, "rad")
            if raw.ndim != 3:
                raise InputError(f"{path}: 'rad' must be 3-D, got shape {raw.shape}")
            rad = raw.transpose(2, 1, 0)          # HDF5 (bands, cols, rows) -> (rows, cols, bands)
            layout = "MATLAB v7.3 (HDF5), transposed (2, 1, 0)"
        else:
            import scipy.io

            try:
                mat = scipy.io.loadmat(path, variable_names=("rad", "bands"))
            except Exception as err:
                raise InputError(f"{path}: neither MATLAB v7.3 (HDF5) nor readable v5 ({err})") from None
            if "rad" not in mat:
                raise InputError(f"{path}: no variable 'rad'")
            rad, layout = np.asarray(mat["rad"]), "MATLAB v5"
            bands = np.asarray(mat["bands"]).ravel() if "bands" in mat else None
        if rad.ndim != 3 or rad.shape[2] != 31:
            raise InputError(f"{path}: 'rad' must be rows x cols x 31 after reading ({layout}), "
                             f"got shape {rad.shape}")
        wl = self.bands_nm
        if bands is not None:
            if bands.size != 31:
                raise InputError(f"{path}: 'bands' has {bands.size} values for 31 bands")
            wl = bands.astype(np.float64)
        rad = _finite(rad.astype(np.float64), path)
        factor, how = normalisation_factor(rad, normalise, str(path))
        x, window = crop_array(rad / factor, crop, position)
        info = _info("ntire2018", scene, path, root, layout=layout, normalisation=how,
                     scale_factor=factor, crop=window,
                     wavelengths_from="file 'bands'" if bands is not None else "400:10:700 nm")
        return Cube(np.ascontiguousarray(x, dtype=np.float32), wl), info


# --------------------------------------------------------------------------- NCALM (DFC2018 Houston)

_TILE = re.compile(r"^r(\d+)c(\d+)$")


def _raster_wavelengths(ds, n: int) -> tuple[np.ndarray | None, str]:
    """Band centres (nm) from a raster's band descriptions or tags, when it has them."""
    values = []
    for i in range(1, n + 1):
        tags = {k.lower(): v for k, v in ds.tags(i).items()}
        text = tags.get("wavelength") or tags.get("center_wavelength") or (ds.descriptions[i - 1] or "")
        m = re.search(r"(\d+(?:\.\d+)?)", str(text))
        if not m:
            return None, ""
        values.append(float(m.group(1)))
    wl = np.array(values)
    if wl.max() < 10:                              # micrometres
        wl = wl * 1000.0
    # Plausible optical band centres only: a description like "Band 7" is not a wavelength.
    if np.all(np.diff(wl) > 0) and 300.0 <= wl.min() and wl.max() <= 2600.0:
        return wl, "band metadata of the file"
    return None, ""


class NCALM(RealDataset):
    """"NCALM": the 2018 IEEE GRSS Data Fusion Contest data over the University of Houston.

    The HSI is the ITRES CASI-1500 mosaic ``20170218_UH_CASI_S4_NAD83.pix`` (PCIDSK, read with
    rasterio): 48 spectral bands, 380–1050 nm, 1 m GSD (the file holds two further non-spectral
    bands, dropped). The VHR RGB (5 cm, GeoTIFF tiles under a folder named "...RGB...") forms a
    *real* LR-HSI / HR-MSI pair: see :meth:`pair`.

    Scenes: ``full`` or a window ``r<ROW>c<COL>`` (top-left HSI pixel) of ``size`` x ``size``
    pixels (option ``size``, default 256). Options: ``size``, ``normalise`` (default ``max``
    over the window), ``max_nodata`` (largest allowed fraction of no-data pixels, default 0),
    ``hsi_file`` (path relative to root). Split ``grid256`` lists the 256-pixel grid of a
    1202 x 4172 mosaic (the size rs-fusion-datasets reports; unverified); :func:`ncalm_tiles`
    lists the windows that are actually free of no-data once the file is there.
    Gate: terms (``--accept-terms ncalm``).
    """

    name = "ncalm"
    gate = "terms"
    licence = "2018 IEEE GRSS DFC terms: research use, acknowledge NCALM and UH, cite the contest paper"
    citation = "Y. Xu et al., IEEE JSTARS 12(6), 2019 (2018 IEEE GRSS Data Fusion Contest)"
    bands_nm = CASI_WAVELENGTHS
    n_bands = 48
    hint = "run `hmifbench download ncalm --accept-terms ncalm` first"

    def splits(self, root=None):
        rows, cols, size = 1202, 4172, 256
        if root is not None:
            try:
                rows, cols = self._shape(Path(root))
            except InputError:
                pass
        return {"grid256": [f"r{r}c{c}" for r in range(0, rows - size + 1, size)
                            for c in range(0, cols - size + 1, size)]}

    def hsi_path(self, root, hsi_file=None) -> Path:
        if hsi_file:
            path = Path(root) / hsi_file
            if not path.is_file():
                raise InputError(f"ncalm: {path} not found")
            return path
        hits = _find(root, "*.pix", "ncalm", self._hint())
        casi = [p for p in hits if "casi" in p.name.lower()] or hits
        if not casi:
            raise InputError(f"ncalm: no CASI .pix file under {root}; {self._hint()}")
        return casi[0]

    def _shape(self, root):
        import rasterio

        with rasterio.open(self.hsi_path(root)) as ds:
            return ds.height, ds.width

    def window(self, scene, shape, size=256) -> tuple[int, int, int, int]:
        if scene == "full":
            return 0, 0, int(shape[0]), int(shape[1])
        m = _TILE.match(scene)
        if not m:
            raise InputError(f"ncalm scenes are 'full' or 'r<ROW>c<COL>' (e.g. r0c512), got {scene!r}")
        r0, c0, size = int(m.group(1)), int(m.group(2)), int(size)
        if r0 + size > shape[0] or c0 + size > shape[1]:
            raise InputError(f"ncalm: window {scene} of {size} px does not fit the {shape[0]}x{shape[1]} HSI")
        return r0, c0, size, size

    def read(self, scene, root=None, size=256, normalise="max", max_nodata=0.0, hsi_file=None, **options):
        if options:
            raise InputError(f"ncalm: unknown options {sorted(options)}; use size, normalise, max_nodata, hsi_file")
        import rasterio
        from rasterio.windows import Window

        path = self.hsi_path(root, hsi_file)
        try:
            ds = rasterio.open(path)
        except rasterio.errors.RasterioIOError as err:
            raise InputError(f"{path}: cannot open with rasterio ({err})") from None
        with ds:
            if ds.count < self.n_bands:
                raise InputError(f"{path}: {ds.count} bands, expected at least {self.n_bands}")
            r0, c0, h, w = self.window(scene, (ds.height, ds.width), size)
            data = ds.read(list(range(1, self.n_bands + 1)), window=Window(c0, r0, w, h))
            wl, wl_from = _raster_wavelengths(ds, self.n_bands)
            nodata = ds.nodata
            transform = ds.window_transform(Window(c0, r0, w, h))
            crs = ds.crs
        x = np.moveaxis(data, 0, -1).astype(np.float64)
        x = _finite(x, path)
        invalid = np.all(x == (nodata if nodata is not None else 0), axis=2)
        frac = float(invalid.mean())
        if frac > float(max_nodata):
            raise InputError(f"{path}: window {scene} ({h}x{w}) has {100 * frac:.1f} % no-data pixels "
                             f"(max_nodata={max_nodata}); pick another window (see ncalm_tiles)")
        factor, how = normalisation_factor(x, normalise, str(path))
        if wl is None:
            wl, wl_from = self.bands_nm, "CASI band centres listed by rs-fusion-datasets (file has none)"
        info = _info("ncalm", scene, path, root, window={"row": r0, "col": c0, "rows": h, "cols": w},
                     normalisation=how + (" (of the window)" if normalise == "max" else ""),
                     scale_factor=factor, nodata_fraction=frac, wavelengths_from=wl_from,
                     crs=str(crs), transform=list(transform)[:6])
        return Cube(np.ascontiguousarray(x / factor, dtype=np.float32), wl), info

    def rgb_tiles(self, root) -> list[Path]:
        tiles = [p for p in _find(root, "*.tif", "ncalm", self._hint())
                 if any("rgb" in part.lower() for part in p.relative_to(root).parts[:-1])]
        if not tiles:
            raise InputError(f"ncalm: no VHR RGB GeoTIFFs under {root} (looked for *.tif in a folder "
                             "whose name contains 'RGB')")
        return tiles

    def pair(self, scene, root=None, scale=4, **options) -> tuple[Cube, Cube, int]:
        """The real pair of ``scene``: (LR-HSI = CASI window, HR-MSI = VHR RGB, scale).

        The RGB tiles are mosaicked and resampled (pixel-area average, the right filter for
        going from 5 cm to coarser) onto the HSI window's own grid refined ``scale`` times, via
        the two rasters' georeferencing; so HR pixel (s·i + a, s·j + b) lies inside LR pixel
        (i, j). RGB counts are divided by 255 (8-bit) or by their maximum (otherwise).
        """
        lr, info = self.read(scene, root, **options)
        hr = self._rgb_on_grid(root, info, int(scale))
        return lr, hr, int(scale)

    def _rgb_on_grid(self, root, info, scale):
        import rasterio
        from affine import Affine
        from rasterio.warp import Resampling, reproject

        if scale < 1:
            raise InputError(f"scale must be >= 1, got {scale}")
        h, w = info["window"]["rows"] * scale, info["window"]["cols"] * scale
        dst_transform = Affine(*info["transform"]) @ Affine.scale(1.0 / scale)
        out = np.zeros((3, h, w), dtype=np.float64)
        filled = np.zeros((h, w), dtype=bool)
        dtype = None
        for tile in self.rgb_tiles(root):
            with rasterio.open(tile) as src:
                if src.count < 3:
                    raise InputError(f"{tile}: {src.count} bands, expected 3 (RGB)")
                dtype = src.dtypes[0]
                part = np.full((3, h, w), np.nan)
                for b in range(3):
                    reproject(rasterio.band(src, b + 1), part[b], dst_transform=dst_transform,
                              dst_crs=info["crs"], dst_nodata=np.nan, resampling=Resampling.average)
            ok = np.all(np.isfinite(part), axis=0) & ~filled
            out[:, ok] = part[:, ok]
            filled |= ok
        if not filled.all():
            raise InputError(f"ncalm: the RGB tiles cover only {100 * filled.mean():.1f} % of window "
                             f"{info['scene']} at x{scale}")
        divisor = 255.0 if dtype == "uint8" else float(out.max())
        return Cube(np.moveaxis(out / divisor, 0, -1).astype(np.float32))


def ncalm_tiles(root, size: int = 256, max_nodata: float = 0.0, hsi_file=None) -> list[str]:
    """The ``r<ROW>c<COL>`` windows of a ``size`` grid with at most ``max_nodata`` no-data pixels.

    Run once after the first download to pin the NCALM scene list in the config.
    """
    import rasterio

    ds_obj = NCALM()
    path = ds_obj.hsi_path(Path(root), hsi_file)
    with rasterio.open(path) as ds:
        nodata = ds.nodata if ds.nodata is not None else 0
        invalid = None
        for b in range(1, ds_obj.n_bands + 1):
            band_invalid = ds.read(b) == nodata
            invalid = band_invalid if invalid is None else invalid & band_invalid
        rows, cols = ds.height, ds.width
    out = []
    for r in range(0, rows - size + 1, size):
        for c in range(0, cols - size + 1, size):
            if invalid[r:r + size, c:c + size].mean() <= max_nodata:
                out.append(f"r{r}c{c}")
    return out


# --------------------------------------------------------------------------- WorldView-2

class WV2(RealDataset):
    """WorldView-2 scenes placed by the user (commercial licence; never downloaded).

    For each scene NAME: ``NAME_MS.tif`` (8-band MS, 1.84 m) and ``NAME_PAN.tif`` (0.46 m)
    anywhere under root. :meth:`load` gives the MS image as a cube (wavelengths from the file,
    else :data:`WV2_WAVELENGTHS`); :meth:`pair` gives (MS, PAN, scale) for no-reference scoring.
    MossFuse's own WV-2 data are not published, so this entry fixes our own convention.
    Options: ``crop``, ``position``, ``normalise`` (default ``max``).
    """

    name = "wv2"
    splits_from_files = True  # scene lists are read from the downloaded files
    gate = "manual"
    licence = "Maxar commercial licence (user's own)"
    citation = "Maxar Technologies, WorldView-2"
    bands_nm = WV2_WAVELENGTHS
    hint = "place NAME_MS.tif and NAME_PAN.tif by hand and run `hmifbench download wv2 --verify`"

    def splits(self, root=None):
        if root is None or not Path(root).is_dir():
            return {}
        return {"all": sorted(p.name[:-len("_MS.tif")] for p in _find(root, "*_MS.tif", "wv2", self._hint()))}

    def _path(self, root, scene, suffix) -> Path:
        hits = _find(root, f"{scene}_{suffix}.tif", f"wv2/{scene}", self._hint())
        if not hits:
            raise InputError(f"wv2: {scene}_{suffix}.tif not found under {root}; {self._hint()}")
        return hits[0]

    def _open(self, path):
        import rasterio

        try:
            return rasterio.open(path)
        except rasterio.errors.RasterioIOError as err:
            raise InputError(f"{path}: cannot open with rasterio ({err})") from None

    def read(self, scene, root=None, crop=None, position="topleft", normalise="max", **options):
        if options:
            raise InputError(f"wv2: unknown options {sorted(options)}; use crop, position, normalise")
        path = self._path(root, scene, "MS")
        with self._open(path) as ds:
            if ds.count != 8:
                raise InputError(f"{path}: {ds.count} bands, expected 8 (WorldView-2 MS)")
            data = _finite(np.moveaxis(ds.read(), 0, -1).astype(np.float64), path)
            wl, wl_from = _raster_wavelengths(ds, ds.count)
        factor, how = normalisation_factor(data, normalise, str(path))
        x, window = crop_array(data / factor, crop, position)
        info = _info("wv2", scene, path, root, normalisation=how, scale_factor=factor, crop=window,
                     wavelengths_from=wl_from or "WorldView-2 nominal band centres")
        return Cube(np.ascontiguousarray(x, dtype=np.float32), wl if wl is not None else self.bands_nm), info

    def pair(self, scene, root=None, crop=None, position="topleft", normalise="max") -> tuple[Cube, Cube, int]:
        """(MS cube, PAN cube, scale) of ``scene``; ``crop``/``position`` are in MS pixels.

        The scale is the ratio of the pixel sizes and must be an integer; the PAN window is the
        MS window times the scale, so both cover the same ground.
        """
        from rasterio.windows import Window

        ms, info = self.read(scene, root, crop=crop, position=position, normalise=normalise)
        pan_path = self._path(root, scene, "PAN")
        with self._open(self._path(root, scene, "MS")) as ds:
            res_ms = abs(ds.transform.a)
        with self._open(pan_path) as ds:
            ratio = res_ms / abs(ds.transform.a)
            scale = int(round(ratio))
            if abs(ratio - scale) > 1e-3 or scale < 1:
                raise InputError(f"wv2/{scene}: MS/PAN pixel-size ratio {ratio:.4f} is not an integer")
            win = info["crop"] or {"row": 0, "col": 0, "rows": ms.shape[0], "cols": ms.shape[1]}
            r0, c0, h, w = (win["row"] * scale, win["col"] * scale, win["rows"] * scale, win["cols"] * scale)
            if r0 + h > ds.height or c0 + w > ds.width:
                raise InputError(f"{pan_path}: {ds.height}x{ds.width} does not cover {scale} x the MS window")
            pan = _finite(ds.read(1, window=Window(c0, r0, w, h)).astype(np.float64), pan_path)
        factor, _ = normalisation_factor(pan, normalise, str(pan_path))
        return ms, Cube((pan / factor)[:, :, None]), scale


def _register():
    from hmifbench.datasets.base import register_dataset

    for dataset in (CAVE(), Harvard(), NTIRE2018(), NCALM(), WV2()):
        register_dataset(dataset)


_register()
