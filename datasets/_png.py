"""A PNG reader that keeps every bit of 16-bit colour PNGs (used for CAVE's bands).

Pillow decodes 16-bit RGB PNGs to 8 bits, which would silently drop the low byte of such a CAVE
band (``watercolors`` is reported to ship some bands as colour PNGs). :func:`decode_png`
implements the PNG format's filters (specification: W3C, *Portable Network Graphics (PNG)
Specification*, 2nd ed., 2003) with numpy and zlib only; :func:`read_png_band` picks the
decoder per file and turns a colour band into one channel.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from hmifbench.errors import InputError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_header(path: Path) -> tuple[int, int, int, int]:
    """``(width, height, bit_depth, colour_type)`` from a PNG's IHDR chunk."""
    with open(path, "rb") as fh:
        head = fh.read(33)
    if head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise InputError(f"{path}: not a PNG file")
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
    try:
        raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    except zlib.error as err:
        raise InputError(f"{path}: corrupt PNG data ({err})") from None
    bpp = channels * depth // 8
    stride = width * bpp
    if raw.size != height * (stride + 1):
        raise InputError(f"{path}: PNG data has {raw.size} bytes, expected {height * (stride + 1)}")
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
