"""Named, versioned degradation protocols and :func:`degrade`.

A protocol fixes everything needed to turn a ground-truth cube X into an (LR-HSI, HR-MSI)
pair: the PSF (family, size, σ), the scale s, the decimation phase, the border mode, the SRF
table, the noise on each image, and its version. Together with a seed it reproduces the pair
bit for bit; docs/degradations.md defines every protocol in words. The formulas are those of
:mod:`hmifbench.observation`, the single implementation of the observation model.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from hmifbench.cube import Cube, as_array, wavelengths_of
from hmifbench.errors import InputError
from hmifbench.observation import (add_noise, box_psf, default_offset, gaussian_psf,
                                   noise_sigma, spatial_degrade, spectral_degrade)


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
    offset : int or None
        Decimation phase; None means ``s // 2 − 1``.
    border : str
        Border mode of the blur.
    snr_hsi_db, snr_msi_db : float or None
        Target SNR of the white Gaussian noise added to each image (None: no noise).
    noise_per : ``"band"`` or ``"cube"``
        Whether σ is set per band or once for the cube.
    version : int
        Bumped whenever the protocol's numbers change.
    """

    name: str
    scale: int
    psf: dict
    srf: str = "nikon-d700"
    offset: int | None = None
    border: str = "reflect101"
    snr_hsi_db: float | None = None
    snr_msi_db: float | None = None
    noise_per: str = "band"
    version: int = 1
    description: str = ""

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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Pair:
    """A simulated pair with the truth it was made with.

    ``truth`` holds: protocol (its dict), seed, scale, offset, border, psf (k × k list),
    srf (b × B list), srf_name, srf_coverage, noise (σ per band of each image, or None).
    """

    lr_hsi: Cube
    hr_msi: Cube
    truth: dict = field(default_factory=dict)


def _fwhm_gaussian(scale: int) -> dict:
    sigma = scale / (2 * math.sqrt(2 * math.log(2)))
    return {"kind": "gaussian", "size": 2 * math.ceil(3 * sigma) + 1, "sigma": round(sigma, 6)}


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
    return {p.name: p for p in ps}


PROTOCOLS: dict[str, Protocol] = _builtin_protocols()


def get_protocol(protocol) -> Protocol:
    """A :class:`Protocol` from its name, a Protocol, or a dict of Protocol fields."""
    if isinstance(protocol, Protocol):
        return protocol
    if isinstance(protocol, dict):
        try:
            return Protocol(**protocol)
        except TypeError as err:
            raise InputError(f"bad protocol definition: {err}") from None
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

    Returns
    -------
    Pair
    """
    from hmifbench.datasets.srf import srf_for

    p = get_protocol(protocol)
    x = as_array(cube, "ground truth")
    wl = wavelengths_of(cube)
    srf, covered = srf_for(p.srf, wl)
    psf = p.kernel()
    lr = spatial_degrade(x, psf, p.scale, p.decimation_offset, p.border)
    msi = spectral_degrade(x, srf)
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
        "noise": noise or None,
    }
    return Pair(Cube(lr, wl), Cube(msi), truth)
