"""Results along each robustness sweep (docs/robustness.md): curves, a table, estimation errors.

A sweep (the config's ``sweeps:`` section, :mod:`hmifbench.datasets.sweeps`) makes one protocol
per value of one field. For every sweep and dataset this module writes, into one folder:

* ``<sweep>_figure_<dataset>.{png,pdf}`` — the primary metrics (PSNR and SAM by default)
  against the swept value, one line per method entry with its 95 % percentile-bootstrap band
  over scenes (:func:`hmifbench.report.statistics.bootstrap_ci`); entries of one method share
  a colour and differ in line style by setting (known solid, nominal dashed, blind dotted);
  the base value is a vertical grey line; a value where runs failed is marked ✕ "failed".
* ``<sweep>_estimation_<dataset>.{png,pdf}`` — where blind runs estimated the PSF or SRF:
  the relative Frobenius error of each estimate (``rel_frobenius`` of
  :func:`hmifbench.metrics.psf_error` / :func:`~hmifbench.metrics.srf_error`, computed by the
  evaluate stage) against the swept value, with the same bands.
* ``<sweep>_table_<dataset>.{md,html}`` and ``<sweep>_table.csv`` — per entry and metric: the
  mean at the base value, the worst mean along the sweep and the value where it occurs, and
  the slope of the means against the swept value (ordinary least squares over the values, in
  the metric's unit per unit of the field; :func:`sweep_table`).
* ``<sweep>_curves.csv`` — the points behind the figures: mean, band, runs ok and failed.

The base point is the sweep's point whose value equals the base protocol's; when the values do
not include it, the runs of the base protocol itself (if the config ran it) stand in for it,
placed on the axis where the base value is a number (a misregistration of None is a shift of 0)
and kept off the axis otherwise (an SNR of None is "no noise").
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hmifbench.report.metricinfo import info, order_metrics, primary_metric
from hmifbench.report.records import load_scores, method_order, metric_columns, profile_parts
from hmifbench.report.statistics import bootstrap_ci

#: How a swept field is shown: (axis label, unit). Unknown fields are shown by their name.
FIELD_LABELS = {
    "psf.sigma": ("PSF σ", "HR px"),
    "psf.sigma_y": ("PSF σ_y", "HR px"),
    "psf.size": ("PSF size", "HR px"),
    "psf.angle_deg": ("PSF angle", "°"),
    "snr_hsi_db": ("HSI SNR", "dB"),
    "snr_msi_db": ("MSI SNR", "dB"),
    "srf_shift_nm": ("SRF shift", "nm"),
    "misregistration.shift_lr": ("HSI shift ‖(dy, dx)‖", "LR px"),
    "misregistration.rotation_deg": ("HSI rotation", "°"),
    "scale": ("scale factor", "×"),
    "msi_gain_spread": ("MSI gain spread", ""),
    "msi_offset_max": ("MSI offset max", ""),
}

#: What a base value of None means on the axis, for fields where it is a number.
NONE_MEANS = {"misregistration.shift_lr": 0.0, "misregistration.rotation_deg": 0.0,
              "srf_shift_nm": 0.0}

#: Text for a base value of None that has no place on the axis.
NONE_TEXT = {"snr_hsi_db": "no noise", "snr_msi_db": "no noise"}

#: Estimation errors of blind runs (columns of :func:`~hmifbench.report.records.load_scores`).
ESTIMATES = {"psf_rel_error": "PSF relative error ‖ĥ − h‖_F / ‖h‖_F",
             "srf_rel_error": "SRF relative error ‖R̂ − R‖_F / ‖R‖_F"}

SETTING_STYLES = {"known": "-", "nominal": "--", "blind": ":"}


def axis_value(field: str, value) -> float:
    """Where ``value`` of ``field`` sits on the x axis: the number itself, the length of a
    vector (a shift ``[dy, dx]``), :data:`NONE_MEANS` for None, else NaN (no place)."""
    if value is None:
        return NONE_MEANS.get(field, math.nan)
    if isinstance(value, bool):
        return math.nan
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
        return float(np.hypot(*value)) if len(value) == 2 else float(np.linalg.norm(value))
    return math.nan


@dataclass(frozen=True)
class SweepAxis:
    """One sweep as the report sees it.

    ``points``: protocol name → (x, value as written); ``base``: the base protocol's name,
    ``base_value`` its value of the field, ``base_x`` where that is on the axis (NaN: nowhere).
    """

    sweep: str
    field: str
    base: str
    base_value: object
    base_x: float
    points: dict

    @property
    def label(self) -> str:
        name, unit = FIELD_LABELS.get(self.field, (self.field, ""))
        return f"{name} ({unit})" if unit else name

    @property
    def unit(self) -> str:
        return FIELD_LABELS.get(self.field, (self.field, ""))[1]

    @property
    def base_text(self) -> str:
        from hmifbench.datasets.sweeps import value_text

        if self.base_value is None:
            return NONE_TEXT.get(self.field, value_text(NONE_MEANS.get(self.field)))
        return value_text(self.base_value)


def sweep_axes(sweeps: dict) -> list[SweepAxis]:
    """The config's ``sweeps`` section as axes, in config order (expanded by
    :func:`hmifbench.datasets.sweeps.expand_sweeps`, which also validates it)."""
    from hmifbench.datasets.sweeps import expand_sweeps, value_text

    points = expand_sweeps(sweeps or {})
    out = []
    for name, spec in (sweeps or {}).items():
        mine = [p for p in points.values() if p.sweep == name]
        base = mine[0].nominal
        top, _, key = mine[0].field.partition(".")
        base_value = (getattr(base, top) or {}).get(key) if key else getattr(base, top)
        out.append(SweepAxis(name, mine[0].field, base.name, base_value,
                             axis_value(mine[0].field, base_value),
                             {p.protocol.name: (axis_value(p.field, p.value), value_text(p.value))
                              for p in mine}))
    return out


def sweep_runs(df: pd.DataFrame, axis: SweepAxis) -> pd.DataFrame:
    """The runs of one sweep with their place on the axis: ``x``, ``value`` (as written) and
    ``is_base``. The base protocol's runs are added (as the base point) for the entries that
    ran the sweep, unless a swept value equals the base value."""
    swept = df[df["degradation"].isin(list(axis.points))]
    xs = {name: x for name, (x, _) in axis.points.items()}
    texts = {name: text for name, (_, text) in axis.points.items()}
    runs = swept.assign(x=swept["degradation"].map(xs), value=swept["degradation"].map(texts))
    base_in_values = [n for n, (x, t) in axis.points.items()
                      if t == axis.base_text or (np.isfinite(x) and x == axis.base_x)]
    runs = runs.assign(is_base=runs["degradation"].isin(base_in_values))
    if not base_in_values:
        base = df[(df["degradation"] == axis.base) & df["entry"].isin(set(swept["entry"]))
                  & df["dataset"].isin(set(swept["dataset"]))]
        runs = pd.concat([runs, base.assign(x=axis.base_x, value=axis.base_text, is_base=True)],
                         ignore_index=True)
    return runs


def sweep_curves(runs: pd.DataFrame, metric: str, seed: int = 0,
                 n_resamples: int = 2000) -> pd.DataFrame:
    """One row per (dataset, entry, point) of :func:`sweep_runs`: ``mean`` over the scenes that
    succeeded and have a value, its bootstrap ``ci_low``/``ci_high``, ``n_ok`` and ``n_failed``
    (runs that failed at that point: their mean is left out, the count is kept)."""
    rows = []
    keys = ["dataset", "entry", "degradation"]
    for i, ((dataset, entry, degradation), part) in enumerate(runs.groupby(keys, sort=True)):
        ok = part[part["status"] == "ok"]
        values = ok[metric].to_numpy(dtype=float) if metric in ok else np.array([])
        values = values[np.isfinite(values)]
        low, high = bootstrap_ci(values, n_resamples, seed=seed + i)
        first = part.iloc[0]
        rows.append({"dataset": dataset, "entry": entry, "method": first["method"],
                     "setting": first["setting"], "metric": metric, "degradation": degradation,
                     "value": first["value"], "x": float(first["x"]), "is_base": bool(first["is_base"]),
                     "n_ok": int(len(ok)), "n_failed": int((part["status"] != "ok").sum()),
                     "n_values": int(values.size),
                     "mean": float(values.mean()) if values.size else math.nan,
                     "ci_low": low, "ci_high": high})
    out = pd.DataFrame(rows, columns=["dataset", "entry", "method", "setting", "metric",
                                      "degradation", "value", "x", "is_base", "n_ok", "n_failed",
                                      "n_values", "mean", "ci_low", "ci_high"])
    return out.sort_values(["dataset", "entry", "x"], kind="stable").reset_index(drop=True)


def slope(x, y) -> float:
    """Ordinary least-squares slope of ``y`` on ``x`` over the finite pairs; NaN with fewer
    than two distinct x."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if np.unique(x).size < 2:
        return math.nan
    return float(np.polyfit(x, y, 1)[0])


def sweep_table(curves: pd.DataFrame, higher_better: bool) -> pd.DataFrame:
    """Per (dataset, entry) of one metric's :func:`sweep_curves`: ``base`` (mean at the base
    point), ``worst`` and ``worst_at`` (the lowest mean for a higher-is-better metric, the
    highest otherwise, and the value where it occurs), ``slope`` (:func:`slope` of the means
    against x, base point included where it is on the axis), ``n_points`` with a mean,
    ``failed`` (failed runs over all points) and ``failed_at`` (the values with a failure)."""
    rows = []
    for (dataset, entry), c in curves.groupby(["dataset", "entry"], sort=False):
        has = c[np.isfinite(c["mean"])]
        base = c.loc[c["is_base"], "mean"]
        worst_row = (has.loc[has["mean"].idxmin() if higher_better else has["mean"].idxmax()]
                     if len(has) else None)
        rows.append({"dataset": dataset, "entry": entry, "method": c["method"].iloc[0],
                     "setting": c["setting"].iloc[0], "metric": c["metric"].iloc[0],
                     "base": float(base.iloc[0]) if len(base) else math.nan,
                     "worst": float(worst_row["mean"]) if worst_row is not None else math.nan,
                     "worst_at": worst_row["value"] if worst_row is not None else None,
                     "slope": slope(has["x"], has["mean"]), "n_points": int(len(has)),
                     "failed": int(c["n_failed"].sum()),
                     "failed_at": ", ".join(str(v) for v in c.loc[c["n_failed"] > 0, "value"])})
    return pd.DataFrame(rows, columns=["dataset", "entry", "method", "setting", "metric", "base",
                                       "worst", "worst_at", "slope", "n_points", "failed",
                                       "failed_at"])


def sweep_metrics(runs: pd.DataFrame) -> list[str]:
    """The metrics a sweep's figure and table show: PSNR and SAM when scored (the primary
    metric of the profile and the spectral one), else the primary metric alone."""
    ok = runs[runs["status"] == "ok"]
    have = [m for m in order_metrics(metric_columns(runs)) if m in ok and ok[m].notna().any()]
    chosen = [m for m in ("psnr", "sam") if m in have]
    first = primary_metric(have)
    return chosen or ([first] if first else [])


# ---------------------------------------------------------------- styles and figures

def entry_styles(df: pd.DataFrame, order) -> dict[str, dict]:
    """Colour, line style and marker per entry: one colour per *method* (the report's palette,
    :func:`hmifbench.report.figures.method_colours`, in the order the methods first appear in
    ``order``), the line style of the entry's setting, and a marker that tells apart entries of
    one method and setting (e.g. two parameter sets)."""
    from hmifbench.report.figures import method_colours

    first = df.drop_duplicates("entry").set_index("entry")
    methods = list(dict.fromkeys(first.loc[e, "method"] for e in order if e in first.index))
    colours = method_colours(methods)
    markers, used = "osD^v", {}
    out = {}
    for e in order:
        if e not in first.index:
            continue
        method, setting = first.loc[e, "method"], first.loc[e, "setting"] or "known"
        n = used.get((method, setting), 0)
        used[(method, setting)] = n + 1
        out[e] = {"color": colours[method], "linestyle": SETTING_STYLES.get(setting, "-."),
                  "marker": markers[n % len(markers)]}
    return out


def _draw(ax, curves: pd.DataFrame, styles: dict, axis: SweepAxis, ylabel: str):
    """One panel: a line with its band per entry, the base line, failures marked."""
    failed = {}  # x -> colours of the entries that failed there
    for entry, c in curves.groupby("entry", sort=False):
        c = c[np.isfinite(c["x"])].sort_values("x")
        st = styles[entry]
        has = c[np.isfinite(c["mean"])]
        label = entry if len(has) else f"{entry} (failed)"
        ax.plot(has["x"], has["mean"], color=st["color"], linestyle=st["linestyle"],
                marker=st["marker"], ms=2.8, lw=1.1, label=label)
        band = has[np.isfinite(has["ci_low"])]
        ax.fill_between(band["x"], band["ci_low"], band["ci_high"], color=st["color"], alpha=0.15,
                        lw=0)
        for x in c.loc[c["n_failed"] > 0, "x"]:
            failed.setdefault(x, []).append(st["color"])
    if np.isfinite(axis.base_x):
        ax.axvline(axis.base_x, color="0.5", lw=0.7, ls=(0, (1, 1)), zorder=0)
        ax.text(axis.base_x, 1.0, " base", transform=ax.get_xaxis_transform(), ha="left",
                va="top", fontsize=6, color="0.35")
    for x in sorted(failed):
        for i, colour in enumerate(failed[x]):  # one ✕ per failed entry, in its colour
            ax.plot(x, 0.0 + 0.035 * i, "x", color=colour, ms=5, mew=1.4,
                    transform=ax.get_xaxis_transform(), clip_on=False)
        ax.text(x, 0.04 + 0.035 * len(failed[x]), "failed", transform=ax.get_xaxis_transform(),
                ha="center", va="bottom",
                fontsize=5.5, color="#a00")
    ax.set_xlabel(axis.label)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, lw=0.4)


def figure_sweep(panels: list[tuple[str, pd.DataFrame]], styles: dict, axis: SweepAxis, title: str):
    """One figure: a panel per (y label, curves) side by side, one shared legend below."""
    import matplotlib.pyplot as plt

    from hmifbench.report.figures import COLUMN_IN, PAGE_IN

    width = COLUMN_IN if len(panels) <= 2 else PAGE_IN
    fig, axes = plt.subplots(1, len(panels), figsize=(width, 2.0), squeeze=False)
    for ax, (ylabel, curves) in zip(axes[0], panels):
        _draw(ax, curves, styles, axis, ylabel)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3,
               frameon=False, handlelength=2.6)
    off_axis = "" if np.isfinite(axis.base_x) else f"\nbase ({axis.base_text}) off the axis: see the table"
    fig.suptitle(f"{title}{off_axis}", y=1.0)
    fig.tight_layout(pad=0.3, w_pad=0.8)
    return fig


# ---------------------------------------------------------------- tables

def _fmt(metric: str, value) -> str:
    if metric in ESTIMATES:
        return "–" if value is None or not np.isfinite(value) else f"{value:.3f}"
    return info(metric).format(value)


def _metric_title(metric: str) -> str:
    return ESTIMATES[metric].split(" ‖")[0] if metric in ESTIMATES else info(metric).title()


def _slope_unit(metric: str, axis: SweepAxis) -> str:
    unit = "" if metric in ESTIMATES else info(metric).unit
    per = axis.unit or "unit"
    return f"{unit or 'units'} per {per}"


def table_rows(table: pd.DataFrame, axis: SweepAxis) -> list[list[str]]:
    """The printed cells of one dataset's :func:`sweep_table` (all metrics)."""
    out = []
    for r in table.itertuples():
        failed = f"{r.failed} ({r.failed_at})" if r.failed else "0"
        places = 4 if r.metric in ESTIMATES else (info(r.metric).decimals or 2) + 1
        # a slope that rounds to zero is printed as 0 (no "−0.000" from rounding noise)
        slope_text = ("–" if not np.isfinite(r.slope) else "0" if round(r.slope, places) == 0
                      else f"{r.slope:+.{places}f}")
        worst = "failed" if r.n_points == 0 else f"{_fmt(r.metric, r.worst)} at {r.worst_at}"
        out.append([_metric_title(r.metric), r.entry, str(r.setting), _fmt(r.metric, r.base),
                    worst, slope_text, _slope_unit(r.metric, axis), failed])
    return out


HEADER = ["Metric", "Method", "Setting", "At base", "Worst (at value)", "Slope", "Slope unit",
          "Failed runs (at values)"]


def _caption(axis: SweepAxis, dataset: str, n_scenes: int) -> str:
    return (f"Sweep {axis.sweep} on {dataset}: {axis.field} over "
            f"{', '.join(t for _, t in axis.points.values())} (base {axis.base}, "
            f"{axis.field} = {axis.base_text}); means over {n_scenes} scene(s). Worst: the lowest "
            "mean (highest for ↓ metrics and estimation errors) along the sweep, base included. "
            "Slope: least-squares slope of the means against the swept value.")


def markdown_table(table: pd.DataFrame, axis: SweepAxis, dataset: str, n_scenes: int) -> str:
    lines = [f"# Sweep {axis.sweep} — {dataset}", "", _caption(axis, dataset, n_scenes), "",
             "| " + " | ".join(HEADER) + " |", "|:--|:--|:--|--:|--:|--:|:--|:--|"]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(table, axis)]
    return "\n".join(lines + [""])


def html_table(table: pd.DataFrame, axis: SweepAxis, dataset: str, n_scenes: int) -> str:
    from hmifbench.report.tables import html_page

    body = [f"<table><caption>{html.escape(_caption(axis, dataset, n_scenes))}</caption><thead><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in HEADER) + "</tr></thead><tbody>"]
    for row in table_rows(table, axis):
        cls = " class='failed'" if row[4] == "failed" else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    body.append("</tbody></table>")
    return html_page(f"Sweep {axis.sweep} — {dataset}", body)


# ---------------------------------------------------------------- all of them

def write_sweeps(score_paths, sweeps: dict, out_dir, seed: int = 0, n_resamples: int = 2000,
                 formats=("png", "pdf")) -> dict[str, list[Path]]:
    """Write every sweep's figures, tables and curve data into ``out_dir`` (module docstring);
    returns {name: [files]}. A sweep none of whose protocols has a score is skipped."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from hmifbench.report.figures import STYLE, _save
    from hmifbench.report.tables import write_csv, write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # the primary metric profile only: a record scored under extra profiles has a row for each
    df = profile_parts(load_scores(score_paths))[0][1]
    styles = entry_styles(df, method_order(df))
    written: dict[str, list[Path]] = {}
    with plt.rc_context(STYLE), sns.axes_style("ticks"):
        for axis in sweep_axes(sweeps):
            runs = sweep_runs(df, axis)
            if runs.empty:
                continue
            metrics = sweep_metrics(runs)
            estimates = [m for m in ESTIMATES if runs[m].notna().any()]
            curves = {m: sweep_curves(runs, m, seed, n_resamples) for m in metrics}
            for m in estimates:  # only the entries that estimated (blind runs)
                estimated = runs["entry"].isin(set(runs.loc[runs[m].notna(), "entry"]))
                curves[m] = sweep_curves(runs[estimated], m, seed, n_resamples)
            tables = pd.concat([sweep_table(curves[m], info(m).higher_better if m in metrics else False)
                                for m in metrics + estimates], ignore_index=True)
            name = axis.sweep
            written[f"{name}_table"] = [write_csv(out / f"{name}_table.csv", tables)]
            written[f"{name}_curves"] = [write_csv(out / f"{name}_curves.csv",
                                                   pd.concat(curves.values(), ignore_index=True))]
            for dataset, part in runs.groupby("dataset", sort=True):
                n_scenes = part["scene"].nunique()
                table = tables[tables["dataset"] == dataset]
                stem = out / f"{name}_table_{dataset}"
                written[stem.name] = [
                    write_text(stem.with_suffix(".md"), markdown_table(table, axis, dataset, n_scenes)),
                    write_text(stem.with_suffix(".html"), html_table(table, axis, dataset, n_scenes))]
                title = f"{dataset} / {name}: mean, 95 % bootstrap band ({n_scenes} scenes)"
                panels = [(info(m).title(), curves[m][curves[m]["dataset"] == dataset]) for m in metrics]
                if panels:
                    fig = figure_sweep(panels, styles, axis, title)
                    written[f"{name}_figure_{dataset}"] = _save(fig, out, f"{name}_figure_{dataset}", formats)
                panels = [(ESTIMATES[m].split(" ‖")[0], curves[m][curves[m]["dataset"] == dataset])
                          for m in estimates]
                panels = [(label, c) for label, c in panels if len(c)]
                if panels:
                    fig = figure_sweep(panels, styles, axis, f"{dataset} / {name}: blind estimates, "
                                       "relative Frobenius error")
                    written[f"{name}_estimation_{dataset}"] = _save(fig, out, f"{name}_estimation_{dataset}",
                                                                    formats)
    return written
