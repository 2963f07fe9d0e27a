"""How each score is shown: label, unit, direction (higher or lower is better) and precision.

Only presentation lives here; the metrics themselves are defined in :mod:`hmifbench.metrics`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    """Presentation of one score.

    label : column title; unit : shown in brackets after the label ('' for none);
    higher_better : the direction, shown as ↑ / ↓; decimals : fixed decimals of mean and std,
    or ``None`` with ``significant`` digits instead; tolerance : the difference from a
    published value still read as 'reproduced'.
    """

    label: str
    unit: str
    higher_better: bool
    decimals: int | None = 2
    significant: int | None = None
    tolerance: float = 0.0

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_better else "↓"

    def title(self, arrow: bool = True) -> str:
        text = f"{self.label} ({self.unit})" if self.unit else self.label
        return f"{text} {self.arrow}" if arrow else text

    def places(self, value: float) -> int:
        """Decimal places for ``value``: fixed, or enough for the significant digits."""
        if self.decimals is not None:
            return self.decimals
        if not math.isfinite(value) or value == 0:
            return self.significant - 1
        return max(0, self.significant - 1 - math.floor(math.log10(abs(value))))

    def format(self, value: float, places: int | None = None) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return f"{value:.{self.places(value) if places is None else places}f}"


METRICS: dict[str, MetricInfo] = {
    "psnr": MetricInfo("PSNR", "dB", True, 2, tolerance=0.5),
    "ssim": MetricInfo("SSIM", "", True, 4, tolerance=0.005),
    "sam": MetricInfo("SAM", "°", False, 2, tolerance=0.2),
    "ergas": MetricInfo("ERGAS", "", False, 2, tolerance=0.2),
    "rmse": MetricInfo("RMSE", "", False, None, 4, tolerance=0.002),
    "uiqi": MetricInfo("UIQI", "", True, 4, tolerance=0.005),
    "cc": MetricInfo("CC", "", True, 4, tolerance=0.005),
    "q2n": MetricInfo("Q2n", "", True, 4, tolerance=0.005),
    "d_lambda": MetricInfo("D_λ", "", False, 4, tolerance=0.005),
    "d_s": MetricInfo("D_s", "", False, 4, tolerance=0.005),
    "qnr": MetricInfo("QNR", "", True, 4, tolerance=0.005),
    "gflops": MetricInfo("GFLOPs", "", False, 1, tolerance=0.0),
    "fuse_s": MetricInfo("Fuse time", "s", False, None, 3),
}

# The metric a table is ordered by and a figure plots first, in order of preference.
PRIMARY = ("psnr", "qnr", "q2n", "ssim")


def info(metric: str) -> MetricInfo:
    """The presentation of ``metric``; an unknown score is shown with 4 significant digits,
    higher better (and said to be so nowhere, since it has no arrow of its own)."""
    return METRICS.get(metric, MetricInfo(metric, "", True, None, 4))


def primary_metric(metrics) -> str | None:
    """The first of :data:`PRIMARY` among ``metrics``, else the first of them."""
    metrics = list(metrics)
    for name in PRIMARY:
        if name in metrics:
            return name
    return metrics[0] if metrics else None


def order_metrics(metrics) -> list[str]:
    """Known metrics in the order of :data:`METRICS`, then the others alphabetically."""
    metrics = set(metrics)
    known = [m for m in METRICS if m in metrics]
    return known + sorted(metrics - set(known))
