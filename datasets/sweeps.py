"""Robustness sweeps: one protocol field varied over a list of values.

A sweep (the config's ``sweeps:`` section) names a *base* protocol of
:data:`hmifbench.datasets.protocols.PROTOCOLS`, one of its fields and a list of values::

    sweeps:
      psf-sigma: {base: gauss-fwhm-x8, field: psf.sigma, values: [2.4, 3.4, 4.4]}

:func:`expand_sweep` turns it into one protocol per value, in the listed order, named
``<sweep>_<field>-<value>`` (e.g. ``psf-sigma_psf.sigma-3.4``), a copy of the base with that one
field replaced. The field is any :class:`~hmifbench.datasets.protocols.Protocol` field
(``scale``, ``srf``, ``snr_hsi_db``, ...) or a key inside a dict-valued field (``psf.sigma``,
``psf.sigma_y``, ``psf.angle_deg``, ``misregistration.shift_lr``; :data:`NESTED_KEYS`). The
top-level fields are read from the dataclass, so a field added to Protocol later (a gain spread,
say) can be swept without a change to this module. Every swept protocol
keeps its base as its *nominal* protocol: the PSF/SRF a method is told in the ``nominal``
setting (see :func:`hmifbench.stages.simulate`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from hmifbench.datasets.protocols import PROTOCOLS, Protocol, _check_misregistration
from hmifbench.errors import ConfigError, HmifError
from hmifbench.observation import BORDERS

#: Protocol fields that identify or document a protocol rather than describe the degradation.
NOT_SWEPT = ("name", "description", "version")

#: The keys inside the dict-valued fields (what :meth:`Protocol.kernel` and :func:`degrade` read).
NESTED_KEYS = {"psf": ("kind", "size", "sigma", "sigma_y", "angle_deg"),
               "misregistration": ("shift_lr", "rotation_deg", "order")}

SWEEP_NAME = re.compile(r"^[A-Za-z0-9-]+$")  # no '_' so that '<sweep>_' ends the sweep's name
_VALUE_TEXT = re.compile(r"^[A-Za-z0-9.-]+$")  # what a value may look like inside a protocol name


@dataclass(frozen=True)
class SweepPoint:
    """One value of a sweep: the protocol it makes and its base (nominal) protocol."""

    sweep: str
    field: str
    value: object
    protocol: Protocol
    nominal: Protocol


def value_text(value) -> str:
    """How ``value`` is written in a protocol name: ``%g`` for numbers, ``x`` between list items."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, (int, float)):
        return format(value, "g")
    if isinstance(value, (list, tuple)):
        return "x".join(value_text(v) for v in value)
    return str(value)


def point_name(sweep: str, field: str, value) -> str:
    """The protocol name of one sweep value, ``<sweep>_<field>-<value>``."""
    return f"{sweep}_{field}-{value_text(value)}"


def _field_kind(name: str) -> str | None:
    """The annotation of a top-level Protocol field, as written (e.g. ``"float | None"``)."""
    for f in dataclasses.fields(Protocol):
        if f.name == name and name not in NOT_SWEPT:
            return str(f.type)
    return None


def _sweepable_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(Protocol) if f.name not in NOT_SWEPT]


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_type(kind: str, old, value) -> str | None:
    """Why ``value`` cannot replace ``old`` in a field annotated ``kind`` (None: it can)."""
    if old is not None:
        if _is_number(old):
            return None if _is_number(value) else "must be a finite number"
        if isinstance(old, (list, tuple)):
            ok = isinstance(value, (list, tuple)) and len(value) == len(old) and all(map(_is_number, value))
            return None if ok else f"must be a list of {len(old)} finite numbers"
        if isinstance(old, str):
            return None if isinstance(value, str) else "must be a string"
        return None
    if "float" in kind or "int" in kind:
        return None if _is_number(value) else "must be a finite number"
    if "str" in kind:
        return None if isinstance(value, str) else "must be a string"
    return None


def _replace(base: Protocol, field: str, value, name: str) -> Protocol:
    """A copy of ``base`` named ``name`` with ``field`` (maybe ``a.b``) set to ``value``."""
    top, _, key = field.partition(".")
    text = value_text(value)
    if key:
        value = {**(getattr(base, top) or {}), key: list(value) if isinstance(value, tuple) else value}
    return dataclasses.replace(base, name=name, description=f"{base.name} with {field} = {text}",
                               **{top: value})


def _as_old_type(old, kind: str, value):
    """``value`` as an int where the field holds integers (scale, psf.size), else unchanged."""
    wants_int = isinstance(old, int) and not isinstance(old, bool) or (old is None and kind == "int")
    if wants_int and _is_number(value):
        if not float(value).is_integer():
            raise HmifError("must be an integer")
        return int(value)
    return value


def check_protocol(p: Protocol) -> None:
    """Raise :class:`HmifError` if ``p`` cannot degrade a cube (checked without a cube)."""
    from hmifbench.datasets.srf import SRF_TABLES

    if not isinstance(p.scale, int) or p.scale < 1:
        raise HmifError(f"scale must be a positive integer, got {p.scale!r}")
    psf = p.kernel()
    if psf.ndim != 2 or not math.isfinite(float(psf.sum())) or abs(float(psf.sum()) - 1) > 1e-6:
        raise HmifError(f"the PSF {p.psf} does not give a kernel summing to 1")
    if p.psf.get("kind") == "gaussian" and not (p.psf["sigma"] > 0 and p.psf.get("sigma_y", 1) > 0):
        raise HmifError(f"the PSF's sigma must be positive, got {p.psf}")
    if p.srf not in SRF_TABLES:
        raise HmifError(f"unknown SRF table {p.srf!r} (known: {', '.join(sorted(SRF_TABLES))})")
    if p.border not in BORDERS:
        raise HmifError(f"unknown border {p.border!r} (known: {', '.join(sorted(BORDERS))})")
    if p.noise_per not in ("band", "cube"):
        raise HmifError(f"noise_per must be 'band' or 'cube', got {p.noise_per!r}")
    if not _is_number(p.srf_shift_nm):
        raise HmifError(f"srf_shift_nm must be a finite number of nm, got {p.srf_shift_nm!r}")
    for key in ("snr_hsi_db", "snr_msi_db"):
        v = getattr(p, key)
        if v is not None and not _is_number(v):
            raise HmifError(f"{key} must be a finite number or null, got {v!r}")
    _check_misregistration(p.misregistration)


def expand_sweep(name: str, spec: dict, protocols: dict | None = None) -> list[SweepPoint]:
    """The protocols of one sweep, in the order of its values.

    Parameters
    ----------
    name : str
        The sweep's name (letters, digits, ``-``).
    spec : dict
        ``{"base": protocol name, "field": field or "field.key", "values": [...]}``.
    protocols : dict, optional
        Where the base is looked up (default :data:`PROTOCOLS`).

    Raises
    ------
    ConfigError
        Naming the key ``sweeps.<name>.<base|field|values[i]>`` and the problem.
    """
    protocols = PROTOCOLS if protocols is None else protocols
    key = f"config key sweeps.{name}"
    if not SWEEP_NAME.match(str(name)):
        raise ConfigError(f"{key}: a sweep name may hold only letters, digits and '-'")
    base = protocols.get(spec.get("base"))
    if base is None:
        raise ConfigError(f"{key}.base: unknown protocol {spec.get('base')!r} "
                          f"(known: {', '.join(sorted(protocols))})")
    field = str(spec.get("field", ""))
    top, dot, sub = field.partition(".")
    kind = _field_kind(top)
    if kind is None or (dot and sub not in NESTED_KEYS.get(top, ())):
        raise ConfigError(f"{key}.field: unknown protocol field {field!r} (fields: "
                          f"{', '.join(_sweepable_fields())}; a key of psf or misregistration "
                          f"as <field>.<key>: {NESTED_KEYS})")
    old = (getattr(base, top) or {}).get(sub) if dot else getattr(base, top)
    values = spec.get("values") or []
    if not values:
        raise ConfigError(f"{key}.values: give at least one value")
    points, seen = [], {}
    for i, value in enumerate(values):
        where = f"{key}.values[{i}]"
        why = _check_type(kind, old, value)
        text = value_text(value)
        if why is None and not _VALUE_TEXT.match(text):
            why = "as a string it may hold only letters, digits, '.' and '-'"
        if why is None and text in seen:
            why = f"repeats values[{seen[text]}] ({text})"
        if why is None:
            try:
                value = _as_old_type(old, kind, value)
                protocol = _replace(base, field, value, point_name(name, field, value))
                check_protocol(protocol)
            except HmifError as err:
                why = str(err)
            except (TypeError, ValueError) as err:
                why = f"does not make a valid protocol ({err})"
        if why is not None:
            raise ConfigError(f"{where}: {field} = {value!r} {why}")
        seen[text] = i
        points.append(SweepPoint(name, field, value, protocol, base))
    return points


def expand_sweeps(sweeps: dict, protocols: dict | None = None) -> dict[str, SweepPoint]:
    """Every sweep's points by protocol name, sweeps in config order, values in listed order."""
    protocols = PROTOCOLS if protocols is None else protocols
    out: dict[str, SweepPoint] = {}
    for name, spec in (sweeps or {}).items():
        for point in expand_sweep(name, spec, protocols):
            if point.protocol.name in protocols or point.protocol.name in out:
                raise ConfigError(f"config key sweeps.{name}: protocol name {point.protocol.name!r} "
                                  "is already taken")
            out[point.protocol.name] = point
    return out
