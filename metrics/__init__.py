"""hmifbench.metrics — quality indices of fused images, degradation estimates and cost.

Full reference (canonical definitions): :func:`psnr`, :func:`ssim`, :func:`sam`, :func:`ergas`,
:func:`rmse`, :func:`uiqi`, :func:`cc`; the whole set under a named profile with
:func:`evaluate` / :func:`evaluate_record`. See docs/metrics.md for formulas and conventions.
"""

from hmifbench.metrics.full_reference import cc, ergas, psnr, rmse, sam, ssim, uiqi
from hmifbench.metrics.profiles import (
    METRICS_VERSION,
    PROFILES,
    evaluate,
    evaluate_record,
    profile_keys,
)

__all__ = [
    "evaluate", "evaluate_record", "PROFILES", "profile_keys", "METRICS_VERSION",
    "psnr", "ssim", "sam", "ergas", "rmse", "uiqi", "cc",
]
