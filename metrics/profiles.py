"""Named metric profiles and the suite's entry point :func:`evaluate`.

A *profile* fixes every convention of a metric set (peak, window, units, normalisation,
clipping). ``canonical`` is the suite's own; the others reproduce how a given piece of code
computes its published numbers, so tables can be compared like with like:

* ``canonical`` — psnr, ssim, sam, ergas, rmse, uiqi, cc as in :mod:`.full_reference`.
* ``mossfuse`` — ``utils.Loss_valid`` of the authors' MossFuse release.
* ``yokoya`` — ``QualityIndices.m`` of Yokoya's HSMSFusionToolbox.

The code each compatibility profile follows (repository and commit) is listed in
docs/references.md; the formulas are in docs/metrics.md. :data:`PROFILES` is the one table of
profiles: the config's ``metrics.profile``, the CLI's ``--profile`` and :func:`evaluate` all
take their names and the default (:data:`DEFAULT_PROFILE`) from it. Every record made by
:func:`evaluate_record` names its profile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hmifbench.errors import InputError

from ._checks import check_crop, check_data_range, check_pair, check_scale
from ._core import WindowSpec, moments_and_angles, windowed_pass
from ._windows import box_kernel
from .full_reference import (
    _check_window,
    cc_from_moments,
    effective_uiqi_window,
    ergas_from_mse,
    psnr_from_mse,
    ssim_spec,
    uiqi_spec,
)
from .q2n import Q2N_BLOCK, Q2N_SHIFT, matlab_uint16, q2n_fits, q2n_map

#: Version of the metric definitions; bump when any number a profile produces changes.
METRICS_VERSION = "1"



@dataclass(frozen=True)
class Profile:
    """A named metric set: the keys it reports, in order, and the function computing them.

    ``compute(x, y, scale, data_range) -> (scores, extra)`` takes the checked float arrays.
    """

    keys: tuple[str, ...]
    compute: Callable


#: The profile used wherever none is named.
DEFAULT_PROFILE = "canonical"


def profile_keys(profile: str = DEFAULT_PROFILE) -> tuple[str, ...]:
    """The metric keys :func:`evaluate` returns for ``profile``, in order."""
    return PROFILES[check_profile(profile)].keys


def check_profile(profile: str) -> str:
    """``profile`` if it names a profile of :data:`PROFILES`, else InputError listing them."""
    if profile not in PROFILES:
        raise InputError(f"unknown metric profile {profile!r}; choose one of {list(PROFILES)}")
    return profile


# ---------------------------------------------------------------------- canonical

def _canonical(x, y, scale, data_range):
    uiqi_side = effective_uiqi_window(x.shape)
    specs = {"ssim": ssim_spec(data_range), "uiqi": uiqi_spec(uiqi_side)}
    _check_window(x.shape, specs["ssim"].kernel.size, "SSIM")
    per_band, _ = windowed_pass(x, y, specs, moments=False)
    m, total, valid, excluded = moments_and_angles(x, y)
    scores = {
        "psnr": psnr_from_mse(m.mse, data_range),
        "ssim": float(np.mean(per_band["ssim"])),
        "sam": math.degrees(total / valid) if valid else math.nan,
        "ergas": ergas_from_mse(m.mse, m.mean_x, scale),
        "rmse": math.sqrt(float(np.mean(m.mse))),
        "uiqi": float(np.mean(per_band["uiqi"])),
        "cc": cc_from_moments(m),
    }
    return scores, {"sam_excluded_pixels": excluded, "uiqi_window": uiqi_side}


# ----------------------------------------------------------------------- mossfuse

MOSSFUSE_ERGAS_SCALE = 32     # cal_ergas(scale=32) is never given the real scale
MOSSFUSE_SSIM_WINDOW = 7      # skimage default: uniform 7×7, sample covariance
MOSSFUSE_UQI_WINDOW = 8       # sewar.full_ref.uqi default ws


def _mossfuse(x, y, scale, data_range):
    """The MossFuse release's ``utils.Loss_valid``, reproduced (docs/references.md).

    * the estimate is clipped to [0, 1] before every metric (the reference is not);
    * PSNR: per band, peak fixed at 1, mean over bands;
    * SSIM: skimage defaults — 7×7 uniform window, sample covariance (×49/48), K1 = 0.01,
      K2 = 0.03, data_range 1, valid positions, mean over bands;
    * SAM: estimate further clipped to [1e-5, 1]; degrees; mean over *all* pixels with no
      clamp of the cosine and no zero-norm guard (NaN when the reference has a zero
      spectrum, or a rounded cosine exceeds 1);
    * ERGAS: (100/32)·sqrt(Σ_b MSE_b/μ_b² / (B + 1)) whatever the true scale;
    * RMSE: over all elements, on the [0, 1] data;
    * UIQI: ``sewar.full_ref.uqi`` with ws = 8 (its formula, which tends to 1; see
      ``_kernels._sewar``).
    """
    y = np.clip(y, 0.0, 1.0)
    k = MOSSFUSE_SSIM_WINDOW
    _check_window(x.shape, max(k, MOSSFUSE_UQI_WINDOW + 1), "the mossfuse profile")
    specs = {
        "ssim": WindowSpec(kernel=box_kernel(k), c1=0.01 ** 2, c2=0.03 ** 2,
                           cov_norm=k * k / (k * k - 1.0)),
        "uiqi": WindowSpec(kernel=box_kernel(MOSSFUSE_UQI_WINDOW), formula="sewar",
                           drop_last=True),
    }
    per_band, m = windowed_pass(x, y, specs, moments=True)
    bands = x.shape[2]
    scores = {
        "psnr": psnr_from_mse(m.mse, 1.0),
        "rmse": math.sqrt(float(np.mean(m.mse))),
        "ssim": float(np.mean(per_band["ssim"])),
        "sam": _sam_unguarded_deg(x, np.clip(y, 1e-5, 1.0)),
        "ergas": ergas_from_mse(m.mse, m.mean_x, MOSSFUSE_ERGAS_SCALE, n_div=bands + 1),
        "uiqi": float(np.mean(per_band["uiqi"])),
    }
    return scores, {"sam_excluded_pixels": 0}


def _sam_unguarded_deg(x, y, rows_per_block: int = 16) -> float:
    """mean_p arccos(⟨x,y⟩/(‖x‖‖y‖))·180/π over every pixel, no clamp, no guard, float64."""
    rows, cols, bands = x.shape
    total = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        for r0 in range(0, rows, rows_per_block):
            xb = x[r0:r0 + rows_per_block].reshape(-1, bands).astype(np.float64)
            yb = y[r0:r0 + rows_per_block].reshape(-1, bands).astype(np.float64)
            num = np.einsum("pk,pk->p", xb, yb)
            den = np.sqrt(np.einsum("pk,pk->p", xb, xb)) * np.sqrt(np.einsum("pk,pk->p", yb, yb))
            total += float(np.arccos(num / den).sum())
    return math.degrees(total / (rows * cols))


# ------------------------------------------------------------------------- yokoya

#: Full scale of the DN the ``yokoya`` profile gives Q2n: data in [0, data_range] become
#: [0, 10000] (reflectance × 10000, as in the HSMSFusionToolbox demo) before the uint16 cast.
YOKOYA_DN_FULL_SCALE = 10000.0


def _yokoya(x, y, scale, data_range):
    """Yokoya's HSMSFusionToolbox ``QualityIndices.m`` (docs/references.md).

    * PSNR: per band with peak max_p X_b(p) (the reference band's maximum), mean over bands;
    * SAM: as canonical (degrees, zero-norm pixels excluded; MATLAB's real(acos) of a rounded
      cosine above 1 is 0, which the canonical formula also gives);
    * ERGAS: (100/s)·sqrt(mean_b MSE_b / mean(Y_b)²) — normalised by the *estimate's* band
      mean, because QualityIndices passes (I_HS, I_REF) to ERGAS(I, I_ref);
    * Q2n: ``q2n(I_REF, I_HS, 32, 32)`` (:func:`.q2n.q2n`: 32×32 blocks, shift 32) on both
      cubes converted to DN and cast like MATLAB's ``uint16()``: multiplied by
      dn_scale = 10000/data_range (recorded as ``q2n_dn_scale``), rounded half away from
      zero, saturated to [0, 65535]; ``q2n.m``'s rule for a reference block band of mean 0
      (estimate normalised as Y_b + 1) is kept. The cast is why the toolbox needs DN: on
      [0, 1] data uint16 leaves only 0 and 1. NaN when the image is smaller than the
      mirror padding allows (``q2n.m`` fails there; 16 pixels per side for 32×32 blocks).
    """
    m, total, valid, excluded = moments_and_angles(x, y)
    peak = x.max(axis=(0, 1)).astype(np.float64)
    if np.any(peak <= 0):
        raise InputError("the yokoya PSNR peak (max of a reference band) is <= 0 for band(s) "
                         f"{np.flatnonzero(peak <= 0).tolist()}")
    dn_scale = YOKOYA_DN_FULL_SCALE / data_range
    if q2n_fits(x.shape, Q2N_BLOCK, Q2N_SHIFT):
        q2n_value, _ = q2n_map(matlab_uint16(np.asarray(x, np.float64) * dn_scale),
                               matlab_uint16(np.asarray(y, np.float64) * dn_scale),
                               Q2N_BLOCK, Q2N_SHIFT, matlab_zero_mean=True)
    else:
        q2n_value = math.nan
    scores = {
        "psnr": psnr_from_mse(m.mse, peak),
        "sam": math.degrees(total / valid) if valid else math.nan,
        "ergas": ergas_from_mse(m.mse, m.mean_y, scale),
        "q2n": q2n_value,
    }
    return scores, {"sam_excluded_pixels": excluded, "q2n_dn_scale": dn_scale}


#: Every profile, by name (the default, :data:`DEFAULT_PROFILE`, first).
PROFILES: dict[str, Profile] = {
    "canonical": Profile(("psnr", "ssim", "sam", "ergas", "rmse", "uiqi", "cc"), _canonical),
    "mossfuse": Profile(("psnr", "rmse", "ssim", "sam", "ergas", "uiqi"), _mossfuse),
    "yokoya": Profile(("psnr", "sam", "ergas", "q2n"), _yokoya),
}


# ------------------------------------------------------------------------ public

def evaluate_record(reference, estimate, scale, profile: str = DEFAULT_PROFILE, crop: int = 0,
                    data_range: float = 1.0) -> dict:
    """Score ``estimate`` against ``reference`` under a named profile, with its configuration.

    Returns
    -------
    dict
        ``{"profile": str, "metrics_version": str, "scale": float, "crop": int,
        "data_range": float, "scores": {key: float}, "sam_excluded_pixels": int}``
        (plus ``"uiqi_window"`` for the canonical profile and ``"q2n_dn_scale"`` for
        ``yokoya``). ``scores`` has exactly the keys
        :func:`profile_keys` lists. This shape is stable: the workflow writes it as a JSON
        score file.
    """
    profile = check_profile(profile)
    s = check_scale(scale)
    L = check_data_range(data_range)
    x, y = check_pair(reference, estimate, crop)
    scores, extra = PROFILES[profile].compute(x, y, s, L)
    record = {
        "profile": profile,
        "metrics_version": METRICS_VERSION,
        "scale": s,
        "crop": check_crop(crop, (x.shape[0] + 2 * int(crop), x.shape[1] + 2 * int(crop))),
        "data_range": L,
        "scores": {k: float(scores[k]) for k in PROFILES[profile].keys},
    }
    record.update(extra)
    return record


def evaluate(reference, estimate, scale, profile: str = DEFAULT_PROFILE, crop: int = 0,
             data_range: float = 1.0) -> dict[str, float]:
    """The metric values of ``profile`` (lower-case keys, see :func:`profile_keys`).

    Parameters
    ----------
    reference, estimate : array_like or Cube, shape (rows, cols, bands)
        Ground truth and fused image. NaN/Inf or a shape mismatch raise InputError.
    scale : float
        The HR/LR resolution ratio s (ERGAS's 100/s).
    profile : str
        One of :data:`PROFILES`.
    crop : int
        Pixels removed from every border before scoring.
    data_range : float
        Declared range L of the data (PSNR peak, SSIM constants); 1.0 for [0, 1] data.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.full((16, 16, 3), 0.5, np.float32); y = x + np.float32(0.01)
    >>> round(evaluate(x, y, 4)["psnr"], 6)
    40.0
    """
    return evaluate_record(reference, estimate, scale, profile, crop, data_range)["scores"]
