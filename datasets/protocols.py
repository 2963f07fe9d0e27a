"""Named, versioned degradation protocols and :func:`degrade`.

A protocol fixes everything needed to turn a ground-truth cube X into an (LR-HSI, HR-MSI)
pair: the PSF (family, size, σ), the scale s, the decimation phase, the border mode, the SRF
table, the MSI's radiometry (per-band gains and offsets), the noise on each image, an optional
misregistration of the HSI, and its version.
Together with a seed it reproduces the pair bit for bit; docs/degradations.md defines every
protocol in words. The formulas are those of :mod:`hmifbench.observation`, the single
implementation of the observation model; the misregistration warp is :func:`misregister`.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from hmifbench.cube import Cube, as_array, wavelengths_of
from hmifbench.errors import InputError
from hmifbench.observation import (BORDERS, DEFAULT_BORDER, add_noise, apply_radiometry, box_psf,
                                   default_offset, fwhm_gaussian_params, gaussian_psf, noise_sigma,
                                   spatial_degrade, spectral_degrade)


@dataclass(frozen=True)
class Protocol:
    """A degradation protocol.

    Parameters
    ----------
    name : str
        Registry key, e.g. ``"mossfuse-x32"``.
    scale : int
        Resolution ratio s.
    psf : dict
        ``{"kind": "gaussian", "size": k, "sigma": σ[, "sigma_y": σy, "angle_deg": θ]}`` or
        ``{"kind": "box", "size": k}`` (k defaults to s for a box).
    srf : str
        Name of an SRF table (:data:`hmifbench.datasets.srf.SRF_TABLES`).
    srf_shift_nm : float
        Every curve of the SRF table moved by this many nm along the wavelength axis before it
        is sampled at the HSI's bands (positive: towards longer wavelengths), a sensor whose
        band centres are off its data sheet (:func:`hmifbench.datasets.srf.srf_for`). 0: the
        table as published.
    offset : int or None
        Decimation phase; None means ``s // 2 − 1``.
    border : str
        Border mode of the blur.
    snr_hsi_db, snr_msi_db : float or None
        Target SNR of the white Gaussian noise added to each image (None: no noise).
    noise_per : ``"band"`` or ``"cube"``
        Whether σ is set per band or once for the cube.
    misregistration : dict or None
        ``{"shift_lr": (dy, dx), "rotation_deg": θ[, "order": 3]}``: before the HSI is blurred,
        the HR truth is shifted by (dy, dx) LR pixels (rows down, columns right) and rotated by θ
        degrees counter-clockwise (as displayed) about the image centre; see
        :func:`misregister`. The HR-MSI is made from the unwarped truth. None: no warp.
    msi_gain_spread : float
        The MSI band j gets the gain ``g_j = 1 + msi_gain_spread · u_j``, u_j uniform in
        [−1, 1] (0: unit gains). A plain field, so a sweep can vary it: the u_j stay the same.
    msi_offset_max : float
        The MSI band j gets the offset ``o_j = msi_offset_max · v_j``, v_j uniform in [0, 1].
    radiometry_seed : int
        Seeds u and v (``default_rng([radiometry_seed, 3])``, u drawn first): the gains and
        offsets are the protocol's, the same for every scene, like a sensor's calibration.
    version : int
        Bumped whenever the protocol's numbers change.
    """

    name: str
    scale: int
    psf: dict
    srf: str = "nikon-d700"
    offset: int | None = None
    border: str = DEFAULT_BORDER
    snr_hsi_db: float | None = None
    snr_msi_db: float | None = None
    noise_per: str = "band"
    version: int = 1
    description: str = ""
    misregistration: dict | None = None
    msi_gain_spread: float = 0.0
    msi_offset_max: float = 0.0
    radiometry_seed: int = 0
    srf_shift_nm: float = 0.0

    def kernel(self) -> np.ndarray:
        """The PSF as a 2-D kernel summing to 1."""
        kind = self.psf.get("kind")
        if kind == "gaussian":
            return gaussian_psf(self.psf["size"], self.psf["sigma"], self.psf.get("sigma_y"),
                                self.psf.get("angle_deg", 0.0))
        if kind == "box":
            return box_psf(self.psf.get("size", self.scale))
        raise InputError(f"protocol {self.name!r}: unknown PSF kind {kind!r}")

    @property
    def decimation_offset(self) -> int:
        return default_offset(self.scale) if self.offset is None else self.offset

    def radiometry(self, msi_bands: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The MSI's gains and offsets (:func:`hmifbench.observation.apply_radiometry`) for
        ``msi_bands`` bands, or None when the protocol has unit gains and no offsets."""
        if not self.msi_gain_spread and not self.msi_offset_max:
            return None
        if not 0 <= self.msi_gain_spread < 1 or not self.msi_offset_max >= 0:
            raise InputError(f"protocol {self.name!r}: msi_gain_spread must be in [0, 1) and "
                             f"msi_offset_max >= 0, got {self.msi_gain_spread}, {self.msi_offset_max}")
        rng = np.random.default_rng([int(self.radiometry_seed), 3])
        u = rng.uniform(-1.0, 1.0, msi_bands)
        v = rng.uniform(0.0, 1.0, msi_bands)
        return 1.0 + self.msi_gain_spread * u, self.msi_offset_max * v

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Pair:
    """A simulated pair with the truth it was made with.

    ``truth`` holds: protocol (its dict), seed, scale, offset, border, psf (k × k list),
    srf (b × B list), srf_name, srf_coverage, noise (σ per band of each image, or None), and
    msi_gain, msi_offset (b lists) when the protocol sets them.
    """

    lr_hsi: Cube
    hr_msi: Cube
    truth: dict = field(default_factory=dict)


def misregister(cube, shift_hr=(0.0, 0.0), rotation_deg: float = 0.0, border: str = DEFAULT_BORDER,
                order: int = 3) -> np.ndarray:
    """Warp every band by a sub-pixel shift and a small rotation about the image centre.

    Parameters
    ----------
    cube : array_like (rows, cols, bands)
        The HR image.
    shift_hr : (float, float)
        Translation (dy, dx) of the content in HR pixels: rows down, columns right.
    rotation_deg : float
        Rotation of the content, degrees counter-clockwise as displayed (rows pointing down),
        about the centre ``c = ((rows − 1)/2, (cols − 1)/2)``.
    border : str
        How the image is extended beyond its edges (a key of
        :data:`hmifbench.observation.BORDERS`).
    order : int
        Spline order of the interpolation (3: cubic B-spline, which may overshoot slightly).

    Returns
    -------
    ndarray (rows, cols, bands), float32
        ``Y(p) = X(c + R(−θ)(p − c − t))``: a feature at q in X is at ``c + R(θ)(q − c) + t``
        in Y, with ``R(θ) = [[cos θ, −sin θ], [sin θ, cos θ]]`` acting on (row, col) offsets.
    """
    x = as_array(cube, "cube").astype(np.float64)
    try:
        mode = BORDERS[border][1]
    except KeyError:
        raise InputError(f"unknown border mode {border!r}; choose one of {sorted(BORDERS)}") from None
    t = math.radians(float(rotation_deg))
    # R(θ) on (row, col) offsets; affine_transform maps output -> input, so it needs R(−θ).
    inv = np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
    centre = (np.array(x.shape[:2], dtype=np.float64) - 1) / 2
    shift = np.asarray(shift_hr, dtype=np.float64)
    offset = centre - inv @ (centre + shift)
    out = np.empty(x.shape, dtype=np.float32)
    for b in range(x.shape[2]):
        out[:, :, b] = ndimage.affine_transform(x[:, :, b], inv, offset=offset, order=int(order),
                                                mode=mode, prefilter=order > 1)
    return out


def _check_misregistration(m: dict | None) -> dict | None:
    if m is None:
        return None
    unknown = set(m) - {"shift_lr", "rotation_deg", "order"}
    if unknown:
        raise InputError(f"misregistration: unknown keys {sorted(unknown)}; "
                         "use shift_lr, rotation_deg, order")
    shift = tuple(float(v) for v in m.get("shift_lr", (0.0, 0.0)))
    if len(shift) != 2 or not all(math.isfinite(v) for v in shift):
        raise InputError(f"misregistration: shift_lr must be two finite numbers, got {m.get('shift_lr')}")
    return {"shift_lr": shift, "rotation_deg": float(m.get("rotation_deg", 0.0)),
            "order": int(m.get("order", 3))}


def _fwhm_gaussian(scale: int) -> dict:
    size, sigma = fwhm_gaussian_params(scale)
    return {"kind": "gaussian", "size": size, "sigma": round(sigma, 6)}


def _builtin_protocols() -> dict[str, Protocol]:
    ps = [
        Protocol("mossfuse-x32", 32, {"kind": "gaussian", "size": 31, "sigma": 2.0},
                 description="MossFuse's CAVE simulation: cv2.GaussianBlur 31×31 σ=2 "
                             "(reflect-101), sample [15::32], create_F SRF, no noise"),
        Protocol("classic-box8", 8, {"kind": "box", "size": 8},
                 description="8×8 block average (NSSR, GSOMP/BSR), no noise"),
    ]
    for s in (4, 8):
        ps.append(Protocol(f"gauss7s2-x{s}", s, {"kind": "gaussian", "size": 7, "sigma": 2.0},
                           description=f"Gaussian 7×7 σ=2 then every {s}th pixel (Dian et al.)"))
    for s in (4, 8, 16, 32):
        ps.append(Protocol(f"gauss-fwhm-x{s}", s, _fwhm_gaussian(s),
                           description="Gaussian whose FWHM is one LR pixel (σ = s/2.3548), no noise"))
    for h, m in ((35, 40), (30, 35)):
        ps.append(Protocol(f"noisy-{h}-{m}", 8, _fwhm_gaussian(8), snr_hsi_db=h, snr_msi_db=m,
                           description=f"gauss-fwhm-x8 with white noise, HSI {h} dB / MSI {m} dB per band"))
    # Added with the real datasets (issue 4); the protocols above keep their numbers.
    ps.append(Protocol("gauss7s2-x16", 16, {"kind": "gaussian", "size": 7, "sigma": 2.0},
                       description="Gaussian 7×7 σ=2 then every 16th pixel (Dian et al. at ×16)"))
    ps.append(Protocol("srf-nikon-a", 8, _fwhm_gaussian(8), srf="nikon-d700-a",
                       description="gauss-fwhm-x8 with the other circulating Nikon D700 table (Table A), no noise"))
    ps.append(Protocol("srf-nikon5100", 8, _fwhm_gaussian(8), srf="nikon-5100", snr_hsi_db=35,
                       snr_msi_db=40, description="gauss-fwhm-x8, Nikon D5100 (NPL) SRF, noise 35/40 dB: "
                                                  "an SRF the methods were not tuned on"))
    ps.append(Protocol("aniso", 8, {"kind": "gaussian", "size": 29, "sigma": 4.5, "sigma_y": 2.25,
                                    "angle_deg": 30.0}, snr_hsi_db=35, snr_msi_db=40,
                       description="anisotropic Gaussian σ 4.5/2.25 px rotated 30°, ×8, noise 35/40 dB"))
    for d in (0.5, 1):
        ps.append(Protocol(f"misreg-{d:g}", 8, _fwhm_gaussian(8), snr_hsi_db=35, snr_msi_db=40,
                           misregistration={"shift_lr": (d, d), "rotation_deg": 0.5, "order": 3},
                           description=f"gauss-fwhm-x8, noise 35/40 dB, HSI shifted {d:g} LR px along "
                                       "rows and columns and rotated 0.5° before blurring"))
    # Remote-sensing scenes (e.g. Houston CASI, 374–1047 nm): satellite MSI bands instead of a camera.
    for srf, tag in (("sentinel2a-vnir", "s2"), ("landsat8-oli", "l8"), ("ikonos", "ikonos")):
        ps.append(Protocol(f"rs-{tag}-x4", 4, _fwhm_gaussian(4), srf=srf,
                           description=f"gauss-fwhm-x4 with the {srf} SRF, no noise (remote-sensing HSI)"))
    ps.append(Protocol("rs-s2-x8", 8, _fwhm_gaussian(8), srf="sentinel2a-vnir",
                       description="gauss-fwhm-x8 with the sentinel2a-vnir SRF, no noise"))
    ps.append(Protocol("rs-s2-noisy-x4", 4, _fwhm_gaussian(4), srf="sentinel2a-vnir", snr_hsi_db=35,
                       snr_msi_db=40, description="rs-s2-x4 with white noise, HSI 35 dB / MSI 40 dB per band"))
    # Real sensors (issue 18): every MSI band with its own gain (and offset) relative to the HSI.
    for sc in (4, 8):
        ps.append(Protocol(f"gain-x{sc}", sc, _fwhm_gaussian(sc), msi_gain_spread=0.3,
                           description=f"gauss-fwhm-x{sc} with MSI gains drawn in [0.7, 1.3], no offsets"))
        ps.append(Protocol(f"gain-offset-x{sc}", sc, _fwhm_gaussian(sc), msi_gain_spread=0.3,
                           msi_offset_max=0.05,
                           description=f"gauss-fwhm-x{sc} with MSI gains drawn in [0.7, 1.3] and "
                                       "offsets in [0, 0.05]"))
    return {p.name: p for p in ps}


PROTOCOLS: dict[str, Protocol] = _builtin_protocols()


def get_protocol(protocol) -> Protocol:
    """A :class:`Protocol` from its name, a Protocol, or a dict of Protocol fields."""
    if isinstance(protocol, Protocol):
        return protocol
    if isinstance(protocol, dict):
        try:
            p = Protocol(**protocol)
        except TypeError as err:
            raise InputError(f"bad protocol definition: {err}") from None
        return dataclasses.replace(p, misregistration=_check_misregistration(p.misregistration))
    try:
        return PROTOCOLS[protocol]
    except KeyError:
        raise InputError(f"unknown degradation protocol {protocol!r}; known: {sorted(PROTOCOLS)}") from None


def pair_seed(seed: int, *names: str) -> int:
    """A stable 32-bit seed derived from a base seed and names (scene, protocol)."""
    return zlib.crc32("/".join([str(seed), *names]).encode())


def degrade(cube, protocol, seed: int = 0) -> Pair:
    """Simulate the (LR-HSI, HR-MSI) pair of ``cube`` under a named protocol.

    Parameters
    ----------
    cube : Cube
        Ground truth (rows, cols, bands) in [0, 1], with wavelengths (needed to place the SRF).
    protocol : str, dict or Protocol
        E.g. ``"mossfuse-x32"``; see :data:`PROTOCOLS`.
    seed : int
        Seeds the noise: the HSI noise uses ``default_rng([seed, 1])``, the MSI ``[seed, 2]``.
        To give every (scene, protocol) its own noise, pass ``pair_seed(base, scene, protocol)``.

    Returns
    -------
    Pair
        ``truth["misregistration"]`` holds the warp applied to the HSI (shift in LR and HR
        pixels, rotation, centre, spline order), or None. A protocol with MSI gains or offsets
        adds ``truth["msi_gain"]`` and ``truth["msi_offset"]`` (one per MSI band), applied to
        the MSI before its noise.
    """
    from hmifbench.datasets.srf import srf_for

    p = get_protocol(protocol)
    x = as_array(cube, "ground truth")
    wl = wavelengths_of(cube)
    srf, covered = srf_for(p.srf, wl, p.srf_shift_nm)
    psf = p.kernel()
    misreg = _check_misregistration(p.misregistration)
    hr_for_hsi = x
    if misreg is not None:
        shift_hr = tuple(v * p.scale for v in misreg["shift_lr"])
        hr_for_hsi = misregister(x, shift_hr, misreg["rotation_deg"], p.border, misreg["order"])
        misreg = {**misreg, "shift_hr": shift_hr, "applied_to": "hsi",
                  "centre_hr": [(x.shape[0] - 1) / 2, (x.shape[1] - 1) / 2]}
    lr = spatial_degrade(hr_for_hsi, psf, p.scale, p.decimation_offset, p.border)
    msi = spectral_degrade(x, srf)
    radiometry = p.radiometry(srf.shape[0])
    if radiometry is not None:
        msi = apply_radiometry(msi, *radiometry)
    noise = {}
    if p.snr_hsi_db is not None:
        noise["hsi_sigma"] = noise_sigma(lr, p.snr_hsi_db, p.noise_per).tolist()
        lr = add_noise(lr, p.snr_hsi_db, np.random.default_rng([seed, 1]), p.noise_per)
    if p.snr_msi_db is not None:
        noise["msi_sigma"] = noise_sigma(msi, p.snr_msi_db, p.noise_per).tolist()
        msi = add_noise(msi, p.snr_msi_db, np.random.default_rng([seed, 2]), p.noise_per)
    truth = {
        "protocol": p.to_dict(), "seed": int(seed), "scale": p.scale,
        "offset": p.decimation_offset, "border": p.border, "psf": psf.tolist(),
        "srf": srf.tolist(), "srf_name": p.srf, "srf_coverage": covered.tolist(),
        "noise": noise or None, "misregistration": misreg,
    }
    if radiometry is not None:
        truth["msi_gain"], truth["msi_offset"] = (v.tolist() for v in radiometry)
    return Pair(Cube(lr, wl), Cube(msi), truth)


def wald_pair(lr_hsi, hr_msi, scale: int, psf=None, offset: int | None = None,
              border: str = DEFAULT_BORDER) -> tuple[Cube, Cube, Cube]:
    """Wald's protocol for a real pair: both images one ``scale`` coarser, the HSI as reference.

    L. Wald, T. Ranchin, M. Mangolini, "Fusion of satellite images of different spatial
    resolutions: assessing the quality of resulting images", PE&RS 63(6):691–699, 1997. A real
    pair has no high-resolution HSI to compare with; degrading both images by the pair's own
    scale gives a pair whose fusion can be scored against the original HSI (assuming the
    quality does not depend on the scale of the scene).

    Parameters
    ----------
    lr_hsi, hr_msi : Cube or array_like
        The real pair, ``hr_msi`` ``scale`` times finer. The HSI is cropped (bottom and right)
        to a multiple of ``scale`` pixels, the MSI to ``scale`` times that.
    scale : int
    psf : array_like, optional
        The blur applied before decimating both images; default the Gaussian whose FWHM is one
        coarse pixel (:func:`hmifbench.observation.fwhm_gaussian_psf`).
    offset : int, optional
        Decimation phase (default ``s // 2 − 1``).
    border : str

    Returns
    -------
    (lr_hsi, hr_msi, reference) : three Cubes
        The reduced HSI (scale² coarser than the reference), the reduced MSI (on the
        reference's grid) and the reference (the cropped original HSI, with its wavelengths).
    """
    from hmifbench.observation import fwhm_gaussian_psf

    s = int(scale)
    x = as_array(lr_hsi, "lr_hsi")
    m = as_array(hr_msi, "hr_msi")
    wl = wavelengths_of(lr_hsi)
    h, w = (x.shape[0] // s) * s, (x.shape[1] // s) * s
    if h == 0 or w == 0:
        raise InputError(f"Wald's protocol: the HSI ({x.shape[0]}x{x.shape[1]}) is smaller than "
                         f"the scale {s}")
    if m.shape[0] < h * s or m.shape[1] < w * s:
        raise InputError(f"Wald's protocol: the MSI ({m.shape[0]}x{m.shape[1]}) does not cover "
                         f"{s} x the HSI ({h}x{w})")
    x, m = x[:h, :w], m[:h * s, :w * s]
    kernel = fwhm_gaussian_psf(s) if psf is None else psf
    reduced_hsi = spatial_degrade(x, kernel, s, offset, border)
    reduced_msi = spatial_degrade(m, kernel, s, offset, border)
    return Cube(reduced_hsi, wl), Cube(reduced_msi), Cube(np.ascontiguousarray(x), wl)
