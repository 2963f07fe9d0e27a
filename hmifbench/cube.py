"""The :class:`Cube` type: a hyperspectral or multispectral image with its wavelengths."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmifbench.errors import InputError


@dataclass(frozen=True, eq=False)
class Cube:
    """An image cube of shape (rows, cols, bands), float32, with band centres in nm.

    Parameters
    ----------
    data : array_like, shape (rows, cols, bands)
        Pixel values. Converted to C-contiguous float32. Reflectance-like data is
        expected in [0, 1], but the cube itself does not enforce a range.
    wavelengths : array_like, shape (bands,), optional
        Band centres in nanometres, strictly increasing. ``None`` when unknown.

    Notes
    -----
    A Cube is accepted wherever an array is: ``np.asarray(cube)`` gives ``cube.data``.
    """

    data: np.ndarray
    wavelengths: np.ndarray | None = None

    def __post_init__(self):
        data = np.ascontiguousarray(self.data, dtype=np.float32)
        if data.ndim != 3:
            raise InputError(f"a cube must have shape (rows, cols, bands); got shape {data.shape}")
        object.__setattr__(self, "data", data)
        if self.wavelengths is not None:
            wl = np.asarray(self.wavelengths, dtype=np.float64).ravel()
            if wl.size != data.shape[2]:
                raise InputError(
                    f"{wl.size} wavelengths given for a cube with {data.shape[2]} bands"
                )
            if wl.size > 1 and not np.all(np.diff(wl) > 0):
                raise InputError("wavelengths must be strictly increasing (nm)")
            object.__setattr__(self, "wavelengths", wl)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.data.shape

    @property
    def bands(self) -> int:
        return self.data.shape[2]

    def __array__(self, dtype=None, copy=None):
        if dtype is None:
            return self.data
        return self.data.astype(dtype)


def as_array(x, name: str = "array", ndim: int = 3) -> np.ndarray:
    """Return ``x`` (an array or a :class:`Cube`) as a float32 array, validated.

    Raises :class:`~hmifbench.errors.InputError` naming ``name`` when the number of
    dimensions is wrong or a value is NaN or infinite.
    """
    data = x.data if isinstance(x, Cube) else np.asarray(x)
    if data.ndim != ndim:
        raise InputError(f"{name}: expected {ndim} dimensions, got shape {data.shape}")
    if not np.issubdtype(data.dtype, np.number):
        raise InputError(f"{name}: expected numbers, got dtype {data.dtype}")
    data = np.asarray(data, dtype=np.float32)
    if not np.isfinite(data).all():
        bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
        raise InputError(f"{name}: {bad} NaN or infinite values")
    return data


def wavelengths_of(x) -> np.ndarray | None:
    """The wavelengths carried by a :class:`Cube`, or ``None`` for a plain array."""
    return x.wavelengths if isinstance(x, Cube) else None
