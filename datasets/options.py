"""Dataset options: how a dataset declares them, how they are checked, and the shared helpers.

A dataset declares its options the way a method declares its parameters: a frozen dataclass
``Options`` nested in the class, one field per option, made with :func:`option`::

    @dataclass(frozen=True)
    class Options:
        size: int = option(128, "side of the square scene, pixels")

The annotation is the accepted type (``int``, ``float``, ``str``, ``bool``, ``list[...]``,
``Literal[...]`` or a union of these; ``None`` in a union allows null); ``check``, when given,
is called with the value and raises :class:`~hmifbench.errors.InputError` when the value has
the right type but no meaning (``crop: big``). A dataset with real pairs declares the options of
:meth:`pair` the same way in ``PairOptions``.

The options of every dataset in a configuration are checked when the configuration is loaded
(:func:`config_option_errors`, called by :func:`hmifbench.config.validate_config`), and again
when a reader receives them (:func:`parse_options`), so ``hmifbench prepare --option k=v``
refuses an unknown or ill-typed option with the same message.

Option values shared by several readers:

``crop``
    ``512`` (square), ``512x256`` (rows x cols) or a pair; none by default (the whole image).
``position``
    Where the crop sits: ``topleft`` (default), ``centre`` or ``ROW,COL`` (top-left corner).
``normalise``
    How values are scaled to [0, 1], where the format does not fix it: ``max`` (divide by the
    image's global maximum *before* cropping, the usual HMIF choice), ``none``, or a number to
    divide by. The factor is recorded in the reader's ``info``.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Literal, Union

import numpy as np

from hmifbench.errors import InputError


def option(default, doc: str, check=None):
    """A dataclass field declaring one dataset option, its default, docstring and value check."""
    return dataclasses.field(default=default, metadata={"doc": doc, "check": check})


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """The options of a dataset that takes none."""


# --------------------------------------------------------------------------- checking

class _Mismatch(Exception):
    """A value does not have the declared type."""


_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
          type(None): "null", Any: "any value"}
_PLURALS = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}


def _describe(typ) -> str:
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(t) for t in args)
    if origin is Literal:
        return "one of " + ", ".join(map(repr, args))
    if typ is list or origin is list:
        return f"a list of {_PLURALS.get(args[0], 'values')}" if args else "a list"
    return _NAMES.get(typ, getattr(typ, "__name__", str(typ)))


def _conform(value, typ):
    """``value`` as the declared type ``typ`` (an integral float becomes an int, an int a
    float where a number is declared), or :class:`_Mismatch`."""
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if typ is Any:
        return value
    if origin in (Union, types.UnionType):
        for t in args:
            try:
                return _conform(value, t)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is Literal:
        if value in args:
            return value
        raise _Mismatch
    if typ is type(None):
        if value is None:
            return None
        raise _Mismatch
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if typ is int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _Mismatch
    if typ is float:
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if typ is list or origin is list:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        return [_conform(v, args[0]) for v in value] if args else list(value)
    if isinstance(typ, type) and isinstance(value, typ):
        return value
    raise _Mismatch


def declared_options(options_cls) -> dict[str, dataclasses.Field]:
    """The fields of an ``Options`` dataclass by name."""
    return {f.name: f for f in dataclasses.fields(options_cls)}


def option_errors(options_cls, given: dict) -> tuple[dict, list[tuple[str, str]]]:
    """Check ``given`` against ``options_cls``: ``(conformed values, [(key, problem), ...])``."""
    fields = declared_options(options_cls)
    hints = typing.get_type_hints(options_cls)
    allowed = ", ".join(sorted(fields)) or "none"
    values, errors = {}, []
    for key, value in given.items():
        if key not in fields:
            errors.append((key, f"unknown option (allowed options: {allowed})"))
            continue
        typ = hints.get(key, Any)
        try:
            values[key] = _conform(value, typ)
        except _Mismatch:
            errors.append((key, f"must be {_describe(typ)}, got {value!r}"))
            continue
        check = fields[key].metadata.get("check")
        if check is not None:
            try:
                check(values[key])
            except InputError as err:
                errors.append((key, str(err)))
    return values, errors


def parse_options(dataset: str, options_cls, given: dict):
    """An ``options_cls`` instance from ``given``; :class:`InputError` naming every bad option."""
    values, errors = option_errors(options_cls, given)
    if errors:
        unknown = sorted(set(given) - set(declared_options(options_cls)))
        lines = [f"option {k!r} {msg}" for k, msg in errors if k not in unknown]
        if unknown:
            allowed = ", ".join(sorted(declared_options(options_cls))) or "none"
            lines.insert(0, f"unknown options {unknown} (allowed options: {allowed})")
        raise InputError(f"{dataset}: " + "; ".join(lines))
    return options_cls(**values)


def config_option_errors(datasets: dict) -> list[str]:
    """``config key datasets.NAME.options.KEY: problem`` for every bad option in ``datasets``.

    ``datasets`` is the configuration's ``datasets`` mapping (schema defaults filled in); the
    ``real_pairs.options`` of a dataset with real pairs are checked against its ``PairOptions``.
    Unknown dataset names are skipped (the configuration check reports them).
    """
    from hmifbench.datasets.base import DATASETS

    out = []
    for name, spec in datasets.items():
        dataset, spec = DATASETS.get(name), spec or {}
        if dataset is None:
            continue
        _, errors = option_errors(dataset.Options, spec.get("options") or {})
        out += [f"config key datasets.{name}.options.{key}: {msg}" for key, msg in errors]
        pair_options = getattr(dataset, "PairOptions", None)
        if isinstance(spec.get("real_pairs"), dict) and pair_options is not None:
            _, errors = option_errors(pair_options, spec["real_pairs"].get("options") or {})
            out += [f"config key datasets.{name}.real_pairs.options.{key}: {msg}" for key, msg in errors]
    return out


# --------------------------------------------------------------------------- crop and scaling

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


def parse_position(position) -> tuple[int, int] | str:
    """``"topleft"`` or ``"centre"`` (spelling variants accepted), or ``(row, col)``."""
    pos = position if not isinstance(position, str) else position.strip().lower()
    if pos in ("topleft", "top-left", "tl"):
        return "topleft"
    if pos in ("centre", "center", "c"):
        return "centre"
    try:
        r0, c0 = [int(v) for v in pos.split(",")] if isinstance(pos, str) else [int(v) for v in pos]
    except (TypeError, ValueError):
        raise InputError(f"position must be topleft, centre or ROW,COL; got {position!r}") from None
    return r0, c0


def crop_window(shape, crop, position="topleft") -> tuple[int, int, int, int]:
    """The window ``(row0, col0, rows, cols)`` of a crop inside an image of ``shape``."""
    size = parse_crop(crop)
    rows, cols = int(shape[0]), int(shape[1])
    if size is None:
        return 0, 0, rows, cols
    h, w = size
    if h > rows or w > cols:
        raise InputError(f"crop {h}x{w} is larger than the image {rows}x{cols}")
    pos = parse_position(position)
    if pos == "topleft":
        r0, c0 = 0, 0
    elif pos == "centre":
        r0, c0 = (rows - h) // 2, (cols - w) // 2
    else:
        r0, c0 = pos
    if r0 < 0 or c0 < 0 or r0 + h > rows or c0 + w > cols:
        raise InputError(f"crop {h}x{w} at ({r0}, {c0}) does not fit the image {rows}x{cols}")
    return r0, c0, h, w


def crop_array(x: np.ndarray, crop=None, position="topleft") -> tuple[np.ndarray, dict | None]:
    """``x`` cropped to :func:`crop_window`, and the window (None when nothing was cut)."""
    r0, c0, h, w = crop_window(x.shape, crop, position)
    if (h, w) == x.shape[:2]:
        return x, None
    return x[r0:r0 + h, c0:c0 + w], {"row": r0, "col": c0, "rows": h, "cols": w,
                                     "of": [int(x.shape[0]), int(x.shape[1])]}


def parse_normalise(normalise) -> str | float:
    """``"max"``, ``"none"`` or a positive divisor."""
    mode = str(normalise).strip().lower()
    if mode in ("max", "none"):
        return mode
    try:
        value = float(mode)
    except ValueError:
        raise InputError(f"normalise must be 'max', 'none' or a number, got {normalise!r}") from None
    if not value > 0:
        raise InputError(f"normalise divisor must be > 0, got {value}")
    return value


def normalisation_factor(x: np.ndarray, normalise, where: str) -> tuple[float, str]:
    """The divisor for ``normalise`` (``max``, ``none`` or a number) and its description."""
    mode = parse_normalise(normalise)
    if mode == "max":
        peak = float(np.max(x))
        if not peak > 0:
            raise InputError(f"{where}: the image is all zeros or negative (max {peak}); cannot normalise")
        return peak, "divided by the image's global maximum (before cropping)"
    if mode == "none":
        return 1.0, "values as stored"
    return mode, f"divided by {mode:g}"


def at_least(lower):
    """A ``check`` refusing values below ``lower``."""
    def check(value):
        if value < lower:
            raise InputError(f"must be >= {lower}, got {value}")
    return check


def fraction(value):
    """A ``check`` refusing values outside [0, 1]."""
    if not 0.0 <= value <= 1.0:
        raise InputError(f"must be in [0, 1], got {value}")


# --------------------------------------------------------------------------- shared declarations

@dataclasses.dataclass(frozen=True)
class CropOptions:
    """``crop`` and ``position``: the options of a reader that can cut a window."""

    crop: int | str | list[int] | None = option(
        None, "crop size: N (square), RxC or [R, C] pixels; null = the whole image", parse_crop)
    position: str | list[int] = option(
        "topleft", "where the crop sits: topleft, centre or ROW,COL (its top-left pixel)", parse_position)


@dataclasses.dataclass(frozen=True)
class CropNormaliseOptions(CropOptions):
    """:class:`CropOptions` plus ``normalise``, for formats that do not fix the value range."""

    normalise: str | float = option(
        "max", "max (divide by the image's maximum, before cropping), none, or a divisor", parse_normalise)
