"""The Method API: what a fusion method (built-in or plugin) implements.

A method is a subclass of :class:`Method` with class-level metadata and a ``Params``
dataclass, in a module that imports no torch, tensorflow or jax at module level (import them
inside ``fit``/``fuse``), so that listing methods and building the workflow never imports an
implementation.  See docs/adding-a-method.md.

This module belongs to the core's base layer: it defines the contracts between the suite and
a method (:class:`FusionProblem` in, :class:`Fused` out) and imports nothing from the
``methods``, ``metrics`` or ``datasets`` packages. ``hmifbench.methods`` and
``hmifbench.methods.base`` re-export it for plugins written against those paths.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from hmifbench.cube import Cube, as_array, wavelengths_of
from hmifbench.errors import InputError
from hmifbench.observation import (DEFAULT_BORDER, check_psf, check_radiometry, check_srf,
                                   default_offset)

#: What a method's ``name`` (its registry key and config name) must look like.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Resources:
    """What one fuse (or train) job needs; becomes Snakemake/SLURM resources.

    gpu : number of GPUs (0 or 1); mem_mb : memory in MB; runtime_min : wall-clock limit of
    one fuse job in minutes; threads : CPU threads; train_runtime_min : wall-clock limit of the
    train job of a dataset-trained method (default: ``runtime_min``).
    """

    gpu: int = 0
    mem_mb: int = 2000
    runtime_min: int = 30
    threads: int = 1
    train_runtime_min: int | None = None

    @property
    def train_runtime(self) -> int:
        """Minutes of one train job."""
        return self.runtime_min if self.train_runtime_min is None else self.train_runtime_min


@dataclass
class FusionProblem:
    """One fusion task.

    Parameters
    ----------
    lr_hsi : array_like (h, w, B)
        The low-resolution hyperspectral image.
    hr_msi : array_like (H, W, b)
        The high-resolution multispectral image, ``H = s·h``, ``W = s·w``.
    scale : int
        The resolution ratio s.
    wavelengths : array_like (B,), optional
        HSI band centres in nm.
    psf : array_like (k, k), optional
        The blur kernel on the HR grid (known setting), summing to 1.
    srf : array_like (b, B), optional
        The spectral response (known setting), rows summing to 1.
    offset : int, optional
        Decimation phase: LR pixel i is blurred HR pixel ``s·i + offset``. Default ``s//2 − 1``.
    border : str
        Border mode used by the blur (see :mod:`hmifbench.observation`).
    msi_gain, msi_offset : array_like (b,), optional
        The MSI's radiometry relative to the HSI (known setting):
        ``Ym_j = g_j · (X · Rᵀ)_j + o_j``. None means unit gain / zero offset, the plain model.
        Given only with the SRF; a method that uses the SRF must use them too (the blind
        methods do so through ``hmifbench.methods._blind.known_or_estimated_degradation``).
    """

    lr_hsi: Any
    hr_msi: Any
    scale: int
    wavelengths: Any = None
    psf: Any = None
    srf: Any = None
    offset: int | None = None
    border: str = DEFAULT_BORDER
    msi_gain: Any = None
    msi_offset: Any = None

    def __post_init__(self):
        if self.wavelengths is None:
            self.wavelengths = wavelengths_of(self.lr_hsi)
        self.lr_hsi = as_array(self.lr_hsi, "lr_hsi")
        self.hr_msi = as_array(self.hr_msi, "hr_msi")
        s = self.scale
        if isinstance(s, float) and s.is_integer():
            s = int(s)
        if not isinstance(s, (int, np.integer)) or s < 1:
            raise InputError(f"scale must be a positive integer, got {self.scale!r}")
        self.scale = int(s)
        (h, w, _), (H, W, _) = self.lr_hsi.shape, self.hr_msi.shape
        if (H, W) != (h * self.scale, w * self.scale):
            raise InputError(
                f"hr_msi is {H}×{W} but lr_hsi {h}×{w} at scale {self.scale} implies "
                f"{h * self.scale}×{w * self.scale}")
        if self.wavelengths is not None:
            self.wavelengths = np.asarray(self.wavelengths, dtype=np.float64)
            if self.wavelengths.size != self.bands:
                raise InputError(f"{self.wavelengths.size} wavelengths for {self.bands} HSI bands")
        if self.psf is not None:
            self.psf = check_psf(self.psf)
        if self.srf is not None:
            self.srf = check_srf(self.srf, self.bands)
            if self.srf.shape[0] != self.hr_msi.shape[2]:
                raise InputError(f"srf has {self.srf.shape[0]} rows but hr_msi has "
                                 f"{self.hr_msi.shape[2]} bands")
        if self.offset is None:
            self.offset = default_offset(self.scale)
        if self.msi_gain is not None or self.msi_offset is not None:
            self.msi_gain, self.msi_offset = check_radiometry(
                self.msi_gain, self.msi_offset, self.msi_bands, "FusionProblem")

    @property
    def bands(self) -> int:
        return self.lr_hsi.shape[2]

    @property
    def msi_bands(self) -> int:
        return self.hr_msi.shape[2]

    @property
    def known(self) -> bool:
        """True when both the PSF and the SRF are given."""
        return self.psf is not None and self.srf is not None

    def blind(self) -> "FusionProblem":
        """The same problem without the PSF, SRF and MSI gains/offsets."""
        return dataclasses.replace(self, psf=None, srf=None, msi_gain=None, msi_offset=None)

    @classmethod
    def from_truth(cls, lr_hsi, hr_msi, truth: dict, setting: str = "known") -> "FusionProblem":
        """The problem of a simulated (or real) pair, as its ``truth`` record describes it.

        Parameters
        ----------
        lr_hsi, hr_msi : Cube or array_like
            The pair's images.
        truth : dict
            The pair's record (``truth.json``): ``scale`` and, where known, ``psf``, ``srf``,
            ``offset``, ``border``, ``msi_gain``, ``msi_offset``; ``real: true`` marks a real
            pair, which has no PSF/SRF.
        setting : {"known", "nominal", "blind"}
            ``"known"`` passes the true PSF, SRF and MSI gains/offsets to the method;
            ``"nominal"`` passes the ones the pair's protocol claims (``truth["nominal"]``: a
            sweep's base protocol, while the pair was made with the swept one); ``"blind"``
            withholds them all.
        """
        if setting not in ("known", "nominal", "blind"):
            raise InputError(f"setting must be 'known', 'nominal' or 'blind', got {setting!r}")
        if "scale" not in truth:
            raise InputError("the pair's truth record has no 'scale'")
        source = truth
        if setting == "nominal" and not truth.get("real"):
            source = truth.get("nominal")
            if not source:
                raise InputError("setting 'nominal' needs the pair's nominal PSF/SRF, but its truth "
                                 "record has no 'nominal' (simulated before it was recorded?)")
        given = setting != "blind" and not truth.get("real")  # a real pair has no truth to give
        return cls(lr_hsi, hr_msi, truth["scale"], wavelengths=wavelengths_of(lr_hsi),
                   psf=source.get("psf") if given else None,
                   srf=source.get("srf") if given else None,
                   offset=truth.get("offset"), border=truth.get("border") or DEFAULT_BORDER,
                   msi_gain=source.get("msi_gain") if given else None,
                   msi_offset=source.get("msi_offset") if given else None)


@dataclass
class Fused:
    """What a method returns.

    hr_hsi : (H, W, B) float32 estimate; psf, srf : the degradation the method estimated
    (blind methods), or None; n_params : number of learned parameters (0 for model-based
    methods); iterations : iterations run, if iterative; extras : anything else worth keeping
    (JSON-serialisable); msi_gain, msi_offset : the MSI's per-band gain and offset relative to
    the HSI that the method estimated with the SRF (blind methods), or None.
    """

    hr_hsi: np.ndarray
    psf: np.ndarray | None = None
    srf: np.ndarray | None = None
    n_params: int = 0
    iterations: int | None = None
    extras: dict = field(default_factory=dict)
    msi_gain: np.ndarray | None = None
    msi_offset: np.ndarray | None = None

    def __post_init__(self):
        self.hr_hsi = np.asarray(self.hr_hsi.data if isinstance(self.hr_hsi, Cube) else self.hr_hsi,
                                 dtype=np.float32)

    def check(self, problem: FusionProblem, method: str | None = None) -> None:
        """The output contract: an (H, W, B) cube on the problem's HR grid, finite everywhere.

        Raises
        ------
        InputError
            Naming ``method`` and what is wrong.
        """
        who = "the method" if method is None else f"method {method!r}"
        expected = problem.hr_msi.shape[:2] + (problem.bands,)
        if self.hr_hsi.shape != expected:
            raise InputError(f"{who} returned shape {self.hr_hsi.shape}, expected {expected} "
                             "(rows and columns of the HR-MSI, bands of the LR-HSI)")
        bad = self.hr_hsi.size - np.count_nonzero(np.isfinite(self.hr_hsi))
        if bad:
            raise InputError(f"{who} returned {bad} NaN or infinite value(s) of {self.hr_hsi.size}")


def _coerce(value, typ, name):
    """Convert a config value to the declared field type, or raise a clear error."""
    origin = typing.get_origin(typ)
    if typ is Any or origin is typing.Union or origin is getattr(__import__("types"), "UnionType", None):
        args = typing.get_args(typ)
        if value is None and type(None) in args:
            return None
        for t in args:
            if t is type(None):
                continue
            try:
                return _coerce(value, t, name)
            except InputError:
                continue
        raise InputError(f"parameter {name!r}: {value!r} does not match {typ}")
    if origin is typing.Literal:
        if value not in typing.get_args(typ):
            raise InputError(f"parameter {name!r} must be one of {list(typing.get_args(typ))}, got {value!r}")
        return value
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise InputError(f"parameter {name!r} must be true or false, got {value!r}")
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) and not (
                isinstance(value, float) and value.is_integer()):
            raise InputError(f"parameter {name!r} must be an integer, got {value!r}")
        return int(value)
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise InputError(f"parameter {name!r} must be a number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise InputError(f"parameter {name!r} must be a string, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise InputError(f"parameter {name!r} must be a list, got {value!r}")
        return origin(value)
    return value


class Method:
    """Base class of every fusion method.

    Class attributes (metadata, readable without running anything)
    ----------------------------------------------------------------
    name : registry key, lower case (``"gsa"``).
    family : ``"linear"`` (model-based) or ``"deep"``.
    training : ``"none"``, or ``"dataset"`` when :meth:`fit` learns from a train split first.
    blind : True when the method estimates the PSF/SRF itself and needs neither.
    needs_psf, needs_srf : whether the method needs that degradation when it is not blind.
    resources : :class:`Resources` of one job.
    citation, licence : where the method comes from and under which terms.
    Params : a dataclass of typed, documented parameters with defaults.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = "linear"
    training: ClassVar[str] = "none"
    blind: ClassVar[bool] = False
    needs_psf: ClassVar[bool] = False
    needs_srf: ClassVar[bool] = False
    resources: ClassVar[Resources] = Resources()
    citation: ClassVar[str] = ""
    licence: ClassVar[str] = ""

    @dataclass
    class Params:
        pass

    def __init__(self, **params):
        self.params = self.make_params(**params)

    @classmethod
    def make_params(cls, **params):
        """Build ``Params`` from config values, with clear errors for unknown or bad ones."""
        fields = {f.name: f for f in dataclasses.fields(cls.Params)}
        unknown = sorted(set(params) - set(fields))
        if unknown:
            raise InputError(f"method {cls.name!r} has no parameter {', '.join(map(repr, unknown))}; "
                             f"its parameters are {sorted(fields) or 'none'}")
        hints = typing.get_type_hints(cls.Params)
        values = {k: _coerce(v, hints.get(k, Any), k) for k, v in params.items()}
        p = cls.Params(**values)
        cls.validate_params(p)
        return p

    @classmethod
    def trains_on_dataset(cls, params) -> bool:
        """Whether this configuration needs :meth:`fit` on a train split before fusing.

        Defaults to ``training == "dataset"``; a method with several modes (e.g. MossFuse's
        ``per-scene``) overrides it, so the workflow adds a train job only when one is needed.
        """
        return cls.training == "dataset"

    @classmethod
    def quick_params(cls) -> dict:
        """Parameter overrides that make one run on a tiny image take seconds.

        Used by the conformance checks (``hmifbench check-method``, whose default is
        ``--quick``, and :func:`hmifbench.testing.check_method`), e.g. ``{"iterations": 2}``
        for an iterative or deep method. They must be valid parameters; the default is none.
        """
        return {}

    @classmethod
    def validate_params(cls, params) -> None:
        """Check parameter values (ranges, combinations); raise InputError naming the parameter."""

    @classmethod
    def describe(cls) -> dict:
        """The method's metadata as plain data (no implementation needed)."""
        hints = typing.get_type_hints(cls.Params)
        params = {}
        for f in dataclasses.fields(cls.Params):
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            params[f.name] = {"type": getattr(hints.get(f.name), "__name__", str(hints.get(f.name))),
                              "default": default, "doc": f.metadata.get("doc", "")}
        return {"name": cls.name, "family": cls.family, "training": cls.training,
                "blind": cls.blind, "needs_psf": cls.needs_psf, "needs_srf": cls.needs_srf,
                "resources": dataclasses.asdict(cls.resources), "citation": cls.citation,
                "licence": cls.licence, "params": params,
                "class": f"{cls.__module__}:{cls.__qualname__}"}

    def check_problem(self, problem: FusionProblem) -> None:
        """Refuse a problem this method cannot solve, with a message that says why."""
        if not self.blind:
            missing = [n for n, need, have in (("psf", self.needs_psf, problem.psf is not None),
                                               ("srf", self.needs_srf, problem.srf is not None))
                       if need and not have]
            if missing:
                raise InputError(f"method {self.name!r} needs the {' and '.join(missing)} "
                                 "(known setting) and is not blind")

    def fit(self, pairs, *, seed: int = 0, device: str = "auto", progress=None, workdir=None):
        """Learn from a train split (``training == "dataset"``); returns a state for :meth:`fuse`.

        ``pairs`` is a list of :class:`FusionProblem`; ``workdir`` is a folder the method may
        write checkpoints to (the workflow passes the model folder). The state must be
        JSON-serialisable (the workflow stores it in ``state.json``), e.g. a checkpoint path.
        """
        raise NotImplementedError(f"method {self.name!r} does not train on a dataset")

    def fuse(self, problem: FusionProblem, *, state=None, seed: int = 0,
             device: str = "auto", progress=None) -> Fused:
        raise NotImplementedError


def param(default, doc: str = ""):
    """A dataclass field with a docstring: ``iterations: int = param(100, "ADMM iterations")``."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})
