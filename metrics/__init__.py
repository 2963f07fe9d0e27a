"""hmifbench.metrics — quality indices of fused images, degradation estimates and cost.

* Full reference (canonical definitions): :func:`psnr`, :func:`ssim`, :func:`sam`,
  :func:`ergas`, :func:`rmse`, :func:`uiqi`, :func:`cc`, :func:`q2n` (Garzelli & Nencini's
  hypercomplex block index); the whole set under a named profile
  (:data:`PROFILES`) with :func:`evaluate` / :func:`evaluate_record`.
* No reference (real pairs): :func:`d_lambda`, :func:`d_s`, :func:`qnr`.
* Degradation estimates of blind methods: :func:`psf_error`, :func:`srf_error`.
* Cost: :mod:`hmifbench.metrics.cost` (parameters, FLOPs, timing, memory; imports torch lazily).

Formulas and conventions: docs/metrics.md.
"""

from hmifbench.metrics.degradation import psf_error, srf_error
from hmifbench.metrics.full_reference import cc, ergas, psnr, rmse, sam, ssim, uiqi
from hmifbench.metrics.no_reference import d_lambda, d_s, qnr
from hmifbench.metrics.profiles import (
    DEFAULT_PROFILE,
    METRICS_VERSION,
    PROFILES,
    check_profile,
    evaluate,
    evaluate_record,
    profile_keys,
)
from hmifbench.metrics.q2n import q2n

__all__ = [
    "DEFAULT_PROFILE",
    "METRICS_VERSION",
    "PROFILES",
    "cc",
    "check_profile",
    "d_lambda",
    "d_s",
    "ergas",
    "evaluate",
    "evaluate_record",
    "profile_keys",
    "psf_error",
    "psnr",
    "q2n",
    "qnr",
    "rmse",
    "sam",
    "srf_error",
    "ssim",
    "uiqi",
]
