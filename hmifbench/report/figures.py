"""Figures 1–7, PNG and PDF, drawn headless (matplotlib's Agg backend) with seaborn.

Every figure uses one colour per method (seaborn's colour-blind-safe ``colorblind`` palette,
assigned in the tables' method order, :func:`~hmifbench.report.records.method_order`) and that
order. Files are named ``fig{N}_{kind}_{dataset}_{degradation}[_{scene}].{png,pdf}``:

1. ``fig1_maps`` — for each chosen scene: false-colour RGB of the truth and of every output,
   per-pixel RMSE and SAM maps (:func:`hmifbench.metrics.error_maps`) on one colour scale per
   map kind, with colour bars.
2. ``fig2_spectra`` — truth and outputs at two pixels chosen from the mean RMSE map: the one
   with the highest error and the one with the median error.
3. ``fig3_distributions`` — per-scene values of the main metrics, box and points per method.
4. ``fig4_cost`` — mean PSNR (or the primary metric) against fuse time and against the
   number of learned parameters, both on log axes.
5. ``fig5_degradation`` — blind runs: estimated vs true PSF (images and central profile) and
   SRF (curves); written only where some run estimated them.
6. ``fig6_convergence`` — ``Fused.extras["convergence"]`` curves, written where some run
   recorded one (``{"iteration": [...], "<name>": [...]}``).
7. ``fig7_cd`` — the critical-difference diagram of the primary metric (Demšar 2006).

The chosen scenes are ``dataset/scene`` names (default: the first scene of each dataset);
figures 1, 2, 5 and 6 are drawn for them under every degradation.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from hmifbench.io import atomic_path, read_cube  # noqa: E402
from hmifbench.report.metricinfo import info, order_metrics, primary_metric  # noqa: E402
from hmifbench.report.records import load_scores, method_order, metric_columns, run_paths  # noqa: E402

log = logging.getLogger(__name__)

COLUMN_IN = 3.5   # one column of a two-column paper
PAGE_IN = 7.16    # both columns
STYLE = {"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "xtick.labelsize": 6.5,
         "ytick.labelsize": 6.5, "legend.fontsize": 6.5, "axes.linewidth": 0.6,
         "lines.linewidth": 1.0, "savefig.dpi": 200, "pdf.fonttype": 42, "ps.fonttype": 42,
         "figure.dpi": 100, "savefig.bbox": "tight", "savefig.pad_inches": 0.02}
MAIN_METRICS = ("psnr", "ssim", "sam", "ergas")


def method_colours(order) -> dict[str, tuple]:
    """One colour per entry, in ``order``: seaborn's 10-colour colour-blind-safe palette
    (Okabe–Ito-like); beyond 10 entries the colours repeat."""
    palette = sns.color_palette("colorblind", 10)
    return {entry: palette[i % len(palette)] for i, entry in enumerate(order)}


def _slug(*parts) -> str:
    return "_".join("".join(c if c.isalnum() or c in "-." else "-" for c in str(p)) for p in parts)


def _save(fig, out: Path, name: str, formats) -> list[Path]:
    paths = []
    for ext in formats:
        path = out / f"{name}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext)
        paths.append(path)
    plt.close(fig)
    return paths


class Results:
    """The score table plus lazy access to the run records and cubes it points to."""

    def __init__(self, score_paths):
        self.df = load_scores(score_paths)
        self.order = method_order(self.df)
        self.colours = method_colours(self.order)
        self._runs: dict = {}

    def ordered(self, part: pd.DataFrame) -> pd.DataFrame:
        rank = {e: i for i, e in enumerate(self.order)}
        return part.assign(_r=part["entry"].map(rank)).sort_values("_r").drop(columns="_r")

    def paths(self, row) -> dict:
        key = ("paths", row["path"])
        if key not in self._runs:
            with open(row["path"]) as f:
                self._runs[key] = run_paths(row["path"], json.load(f))
        return self._runs[key]

    def run(self, row) -> dict:
        if row["path"] not in self._runs:
            p = self.paths(row)["run"]
            self._runs[row["path"]] = json.loads(Path(p).read_text()) if p and Path(p).exists() else {}
        return self._runs[row["path"]]


def chosen_scenes(df: pd.DataFrame, scenes=None) -> list[tuple[str, str]]:
    """(dataset, scene) pairs: ``scenes`` given as ``dataset/scene`` (or a bare scene name,
    looked up in every dataset); default the first scene of each dataset."""
    have = set(zip(df["dataset"], df["scene"]))
    if not scenes:
        return [(d, sorted(g["scene"].unique())[0]) for d, g in df.groupby("dataset", sort=True)]
    out = []
    for s in scenes:
        dataset, _, scene = s.rpartition("/")
        found = [(d, sc) for d, sc in sorted(have) if sc == scene and (not dataset or d == dataset)]
        if not found:
            log.warning("report scene %s: no scores for it", s)
        out += found
    return out


# ---------------------------------------------------------------- figure 1 and 2: the cubes

def _rgb_bands(wavelengths, bands: int) -> list[int]:
    if wavelengths is not None and len(wavelengths) == bands:
        w = np.asarray(wavelengths, float)
        return [int(np.argmin(np.abs(w - t))) for t in (640.0, 550.0, 460.0)]
    return [int(round(f * (bands - 1))) for f in (0.8, 0.5, 0.2)]


def _false_colour(cube: np.ndarray, bands, top: float) -> np.ndarray:
    return np.clip(cube[..., bands] / top, 0.0, 1.0)


def load_scene(results: Results, dataset, degradation, scene):
    """Truth, outputs and error maps of one scene, or None when nothing succeeded."""
    from hmifbench.metrics import error_maps

    df = results.df
    part = df[(df["dataset"] == dataset) & (df["degradation"] == degradation) & (df["scene"] == scene)
              & (df["status"] == "ok")]
    if part.empty:
        return None
    part = results.ordered(part)
    ref_path = results.paths(part.iloc[0])["reference"]
    if ref_path is None or not Path(ref_path).exists():
        log.warning("figure 1/2: no reference cube for %s/%s (real pair?)", dataset, scene)
        return None
    truth = read_cube(ref_path)
    outputs = {}
    for _, row in part.iterrows():
        run = results.run(row)
        cube_path = Path(results.paths(row)["run"]).parent / run.get("output", "hr_hsi.hdr")
        if cube_path.with_suffix(".hdr").exists():
            est = read_cube(cube_path).data
            if est.shape == truth.data.shape:
                outputs[row["entry"]] = (est, *error_maps(truth.data, est))
    return {"truth": truth, "outputs": outputs} if outputs else None


def figure_maps(results: Results, scene_data, title: str):
    """Figure 1: false-colour RGB, RMSE and SAM maps (one colour scale per kind)."""
    truth = scene_data["truth"]
    outputs = scene_data["outputs"]
    entries = list(outputs)
    bands = _rgb_bands(truth.wavelengths, truth.data.shape[2])
    top = float(np.percentile(truth.data[..., bands], 99.5)) or 1.0
    n = len(entries)
    ncols = min(6, n + 1)
    rows_rgb, rows_err = math.ceil((n + 1) / ncols), math.ceil(n / ncols)
    nrows = rows_rgb + 2 * rows_err
    # Square panels: the height follows from the width, plus room for each panel's title.
    left, right, wspace, title_in, top_in = 0.25, 0.55, 0.06, 0.16, 0.3
    side = (PAGE_IN - left - right) / (ncols + wspace * (ncols - 1))
    height = nrows * (side + title_in) + top_in
    fig = plt.figure(figsize=(PAGE_IN, height))
    grid = fig.add_gridspec(nrows, ncols + 1, width_ratios=[1] * ncols + [0.06], wspace=wspace,
                            hspace=title_in / side, left=left / PAGE_IN, right=1 - 0.15 / PAGE_IN,
                            top=1 - top_in / height, bottom=0.01)
    rmse_top = max(np.percentile(o[1], 99) for o in outputs.values()) or 1.0
    sam_top = max(np.nanpercentile(o[2], 99) for o in outputs.values()) or 1.0

    def panel(index, first_row, image, name, colour, **kw):
        ax = fig.add_subplot(grid[first_row + index // ncols, index % ncols])
        im = ax.imshow(image, interpolation="nearest", **kw)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(name, pad=2)
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(1.6 if colour != "black" else 0.6)
        return ax, im

    ax, _ = panel(0, 0, _false_colour(truth.data, bands, top), "truth", "black")
    ax.set_ylabel("false-colour RGB")
    for i, e in enumerate(entries, start=1):
        panel(i, 0, _false_colour(outputs[e][0], bands, top), e, results.colours[e])
    groups = [(rows_rgb, 1, rmse_top, "magma", "per-pixel RMSE\n(reflectance)"),
              (rows_rgb + rows_err, 2, sam_top, "viridis", "SAM (°)")]
    for first_row, k, vmax, cmap, label in groups:
        im = None
        for i, e in enumerate(entries):
            ax, im = panel(i, first_row, outputs[e][k], e, results.colours[e], vmin=0, vmax=vmax, cmap=cmap)
            if i % ncols == 0:
                ax.set_ylabel(label.split("\n")[0])
        cax = fig.add_subplot(grid[first_row:first_row + rows_err, ncols])
        fig.colorbar(im, cax=cax).set_label(label)
    fig.suptitle(title, y=1 - 0.05 / height, va="top")
    return fig


def pick_pixels(scene_data) -> dict[str, tuple[int, int]]:
    """The pixels of figure 2: highest and median mean-over-methods RMSE (deterministic:
    ties go to the first pixel in row-major order)."""
    mean_rmse = np.mean([o[1] for o in scene_data["outputs"].values()], axis=0)
    flat = mean_rmse.ravel()
    high = int(np.argmax(flat))
    typical = int(np.argmin(np.abs(flat - np.median(flat))))
    shape = mean_rmse.shape
    return {"highest error": np.unravel_index(high, shape), "median error": np.unravel_index(typical, shape)}


def figure_spectra(results: Results, scene_data, title: str):
    """Figure 2: spectra of the truth and every output at the pixels of :func:`pick_pixels`."""
    truth = scene_data["truth"]
    w = truth.wavelengths if truth.wavelengths is not None else np.arange(truth.data.shape[2])
    pixels = pick_pixels(scene_data)
    fig, axes = plt.subplots(1, len(pixels), figsize=(COLUMN_IN, 1.9), sharey=True)
    for ax, (what, (r, c)) in zip(np.atleast_1d(axes), pixels.items()):
        ax.plot(w, truth.data[r, c], color="black", lw=1.8, label="truth")
        for e, (est, _, _) in scene_data["outputs"].items():
            ax.plot(w, est[r, c], color=results.colours[e], lw=0.9, label=e)
        ax.set_title(f"{what}, pixel ({r}, {c})", pad=2)
        ax.set_xlabel("wavelength (nm)" if truth.wavelengths is not None else "band")
        ax.grid(alpha=0.3, lw=0.4)
    np.atleast_1d(axes)[0].set_ylabel("reflectance")
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=4, frameon=False)
    fig.suptitle(title, y=1.02)
    fig.tight_layout(pad=0.3)
    return fig


# ---------------------------------------------------------------- figures 3, 4, 7: the scores

def figure_distributions(results: Results, part: pd.DataFrame, title: str):
    """Figure 3: per-scene values per method (box and points), one panel per main metric."""
    ok = part[part["status"] == "ok"]
    metrics = [m for m in MAIN_METRICS if m in ok and ok[m].notna().any()]
    if not metrics:
        metrics = order_metrics(m for m in metric_columns(part) if m in ok and ok[m].notna().any())[:4]
    if not metrics:
        return None
    entries = [e for e in results.order if e in set(part["entry"])]
    height = 0.55 + 0.17 * len(entries)
    fig, axes = plt.subplots(1, len(metrics), figsize=(PAGE_IN, height), sharey=True, squeeze=False)
    palette = {e: results.colours[e] for e in entries}
    for ax, m in zip(axes[0], metrics):
        data = ok[["entry", m]].dropna()
        with warnings.catch_warnings():  # seaborn 0.13 passes matplotlib 3.11's deprecated 'vert'
            warnings.simplefilter("ignore", matplotlib.MatplotlibDeprecationWarning)
            sns.boxplot(data=data, x=m, y="entry", hue="entry", order=entries, hue_order=entries,
                        palette=palette, legend=False, ax=ax, width=0.6, linewidth=0.6, fliersize=0,
                        boxprops={"alpha": 0.75})
        sns.stripplot(data=data, x=m, y="entry", order=entries, color="black", size=2.2, ax=ax,
                      jitter=0.15)
        for i, e in enumerate(entries):
            if e not in set(data["entry"]):
                ax.text(0.02, i, "failed", transform=ax.get_yaxis_transform(), va="center",
                        fontsize=6.5, color="#a00")
        ax.set_xlabel(info(m).title())
        ax.set_ylabel("")
        ax.grid(axis="x", alpha=0.3, lw=0.4)
    fig.suptitle(title, y=1.0)
    fig.tight_layout(pad=0.3, w_pad=0.6)
    return fig


def figure_cost(results: Results, part: pd.DataFrame, title: str):
    """Figure 4: the primary metric against fuse time and against learned parameters."""
    ok = part[part["status"] == "ok"]
    primary = primary_metric(order_metrics(m for m in metric_columns(part) if m in ok and ok[m].notna().any()))
    if primary is None:
        return None
    stats = ok.groupby("entry").agg(q=(primary, "mean"), q_std=(primary, lambda v: v.std(ddof=0)),
                                    t=("fuse_s", "mean"), p=("n_params", "median"))
    entries = [e for e in results.order if e in stats.index]
    fig, axes = plt.subplots(1, 2, figsize=(COLUMN_IN, 2.0), sharey=True)
    for e in entries:
        s = stats.loc[e]
        for ax, x in zip(axes, (s["t"], s["p"] if np.isfinite(s["p"]) else 0.0)):
            ax.errorbar(x, s["q"], yerr=s["q_std"], fmt="o", ms=4, color=results.colours[e],
                        elinewidth=0.7, capsize=1.5, label=e)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("fuse time (s per scene)")
    # symlog so that 0 (model-based methods learn nothing) sits on the same axis as 10^k
    top = max(1, int(math.ceil(math.log10(max(10.0, np.nanmax(stats["p"].fillna(0)) * 2)))))
    axes[1].set_xscale("symlog", linthresh=1.0)
    axes[1].set_xlim(-0.3, 10.0 ** top)
    step = max(1, math.ceil(top / 4))
    ticks = [0.0] + [10.0 ** k for k in range(step, top + 1, step)]
    axes[1].set_xticks(ticks, ["0"] + [f"$10^{{{k}}}$" for k in range(step, top + 1, step)])
    axes[1].xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    axes[1].set_xlabel("learned parameters")
    axes[0].set_ylabel(info(primary).title())
    for ax in axes:
        ax.grid(alpha=0.3, lw=0.4)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=4, frameon=False)
    fig.suptitle(title, y=1.02)
    fig.tight_layout(pad=0.3)
    return fig


def cd_cliques(ranks: np.ndarray, cd: float) -> list[tuple[int, int]]:
    """Groups (first, last index into the sorted ``ranks``) of methods whose mean ranks differ
    by less than ``cd``: the maximal runs, each drawn as one bar."""
    out = []
    for i in range(len(ranks)):
        j = i
        while j + 1 < len(ranks) and ranks[j + 1] - ranks[i] < cd:
            j += 1
        if j > i and not any(a <= i and j <= b for a, b in out):
            out.append((i, j))
    return out


def figure_cd(results: Results, names, ranks, cd: float, title: str):
    """Figure 7: Demšar's critical-difference diagram (rank 1 on the left)."""
    order = np.argsort(ranks, kind="stable")
    names = [names[i] for i in order]
    ranks = np.asarray(ranks, float)[order]
    k = len(names)
    half = math.ceil(k / 2)
    fig_h = 0.85 + 0.16 * half
    fig, ax = plt.subplots(figsize=(COLUMN_IN, fig_h))
    ax.set_xlim(0.5 - 0.9, k + 0.5 + 0.9)
    ax.set_ylim(-(half + 0.8), 1.7)
    ax.axis("off")
    ax.hlines(0, 1, k, color="black", lw=0.8)
    for r in range(1, k + 1):
        ax.vlines(r, 0, 0.18, color="black", lw=0.8)
        ax.text(r, 0.3, str(r), ha="center", va="bottom", fontsize=6.5)
    for i, (name, rank) in enumerate(zip(names, ranks)):
        left = i < half
        level = -(i + 1.1) if left else -(k - i + 0.1)
        x_end = 0.5 - 0.1 if left else k + 0.5 + 0.1
        ax.plot([rank, rank, x_end], [0, level, level], color="black", lw=0.6)
        ax.plot(rank, 0, "o", ms=3.5, color=results.colours.get(name, "grey"))
        # black text: some colour-blind-safe colours (yellow, pink) are too light for text
        ax.text(x_end + (-0.05 if left else 0.05), level, f"{name} ({rank:.2f})",
                ha="right" if left else "left", va="center", fontsize=6.5)
    if np.isfinite(cd):
        ax.plot([1, 1 + cd], [1.15, 1.15], color="black", lw=1.0)
        ax.vlines([1, 1 + cd], 1.07, 1.23, color="black", lw=1.0)
        ax.text(1 + cd / 2, 1.3, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=6.5)
        for n, (a, b) in enumerate(cd_cliques(ranks, cd)):
            y = -0.35 - 0.16 * n
            ax.plot([ranks[a] - 0.05, ranks[b] + 0.05], [y, y], color="black", lw=1.8,
                    solid_capstyle="butt")
    fig.suptitle(title, fontsize=6.5, y=1.0, va="bottom")
    fig.tight_layout(pad=0.2)
    return fig


# ---------------------------------------------------------------- figures 5 and 6: run records

def _wavelengths(pair_dir: Path):
    import spectral.io.envi as envi

    hdr = pair_dir / "lr_hsi.hdr"
    if not hdr.exists():
        return None
    w = envi.read_envi_header(str(hdr)).get("wavelength")
    return np.asarray([float(v) for v in w]) if w else None


def _common_size(kernels):
    """Kernels zero-padded to one odd size around their centres ((k − 1)//2), so that the
    images share a pixel scale."""
    side = max(max(k.shape) for _, k in kernels)
    side += 1 - side % 2
    out = []
    for name, k in kernels:
        (cr, cc), c = ((n - 1) // 2 for n in k.shape), (side - 1) // 2
        out.append((name, np.pad(k, [(c - cr, side - k.shape[0] - (c - cr)),
                                     (c - cc, side - k.shape[1] - (c - cc))])))
    return out


def figure_degradation(results: Results, part: pd.DataFrame, title: str):
    """Figure 5: estimated vs true PSF and SRF of the blind runs of one scene."""
    blind = []
    for _, row in results.ordered(part[part["status"] == "ok"]).iterrows():
        run = results.run(row)
        if run.get("psf") is not None or run.get("srf") is not None:
            blind.append((row, run))
    if not blind:
        return None
    pair = results.paths(blind[0][0])["pair"]
    truth = json.loads((Path(pair) / "truth.json").read_text()) if pair else {}
    true_psf = np.asarray(truth["psf"]) if truth.get("psf") is not None else None
    true_srf = np.asarray(truth["srf"]) if truth.get("srf") is not None else None
    w = _wavelengths(Path(pair)) if pair else None
    psfs = [(row["entry"], np.asarray(run["psf"])) for row, run in blind if run.get("psf") is not None]
    srfs = [(row["entry"], np.asarray(run["srf"])) for row, run in blind if run.get("srf") is not None]
    kernels = _common_size(([("truth", true_psf)] if true_psf is not None else []) + psfs) if psfs else []
    # Panels in reading order, four to a row: PSF images, their central rows, SRF curves.
    n_panels = len(kernels) + (1 if kernels else 0) + len(srfs)
    ncols = min(4, n_panels)
    nrows = math.ceil(n_panels / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(PAGE_IN, 1.8 * ncols), 1.65 * nrows + 0.25),
                             squeeze=False)
    slots = iter(axes.ravel())
    if kernels:
        vmax = max(k.max() for _, k in kernels)
        for name, k in kernels:
            ax = next(slots)
            ax.imshow(k, cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
            ax.set_title(f"PSF {name}", pad=2)
            ax.set_xticks([])
            ax.set_yticks([])
        # one colour scale for all kernels; the central-row panel gives the values
        ax = next(slots)
        for name, k in kernels:
            centre = (k.shape[0] - 1) // 2
            x = np.arange(k.shape[1]) - (k.shape[1] - 1) // 2
            ax.plot(x, k[centre], color="black" if name == "truth" else results.colours[name],
                    ls="--" if name == "truth" else "-", label=name)
        ax.set_xlabel("offset (HR pixels)")
        ax.set_ylabel("PSF weight")
        ax.set_title("PSF central row", pad=2)
        ax.legend(frameon=False, fontsize=6)
    for name, srf in srfs:
        ax = next(slots)
        x = w if w is not None and len(w) == srf.shape[1] else np.arange(srf.shape[1])
        for b in range(srf.shape[0]):
            if true_srf is not None and true_srf.shape == srf.shape:
                ax.plot(x, true_srf[b], color="black", ls="--", lw=0.8,
                        label="truth" if b == 0 else None)
            ax.plot(x, srf[b], color=results.colours[name], lw=1.0, label=name if b == 0 else None)
        ax.set_title(f"SRF {name}", pad=2)
        ax.set_xlabel("wavelength (nm)" if w is not None else "HSI band")
        ax.set_ylabel("response of each MSI band")
        ax.legend(frameon=False, fontsize=6)
    for ax in slots:
        ax.set_visible(False)
    fig.suptitle(title, y=1.0)
    fig.tight_layout(pad=0.3)
    return fig


def figure_convergence(results: Results, part: pd.DataFrame, title: str):
    """Figure 6: every recorded convergence curve of one scene, one panel per method."""
    curves = []
    for _, row in results.ordered(part[part["status"] == "ok"]).iterrows():
        conv = (results.run(row).get("extras") or {}).get("convergence")
        # a single point is no curve (CNMF with its default one outer iteration)
        if isinstance(conv, dict) and len(conv.get("iteration") or []) >= 2:
            curves.append((row["entry"], conv))
    if not curves:
        return None
    ncols = min(4, len(curves))
    nrows = math.ceil(len(curves) / ncols)
    width = COLUMN_IN if ncols <= 2 else PAGE_IN
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 1.6 * nrows + 0.3), squeeze=False)
    for ax in axes.ravel()[len(curves):]:
        ax.set_visible(False)
    styles = ["-", "--", ":", "-."]
    for ax, (entry, conv) in zip(axes.ravel(), curves):
        it = np.asarray(conv["iteration"], float)
        names = [k for k in conv if k != "iteration"]
        positive = True
        for i, name in enumerate(names):
            y = np.asarray(conv[name], float)
            if len(y) != len(it):
                continue
            positive &= bool(np.all(y[np.isfinite(y)] > 0))
            ax.plot(it, y, styles[i % len(styles)], color=results.colours[entry], label=name,
                    marker="o" if len(it) < 15 else None, ms=2.5)
        if positive:
            ax.set_yscale("log")
        ax.set_title(entry, pad=2, color=results.colours[entry])
        ax.set_xlabel("iteration")
        ax.set_ylabel("value (log)" if positive else "value")
        ax.grid(alpha=0.3, lw=0.4)
        ax.legend(frameon=False, loc="best", fontsize=6)
    fig.suptitle(title, y=1.0)
    fig.tight_layout(pad=0.3)
    return fig


# ---------------------------------------------------------------- all of them

def write_figures(score_paths, out_dir, scenes=None, formats=("png", "pdf")) -> dict[str, list[Path]]:
    """Draw figures 1–7 into ``out_dir``; returns {figure name: [files]}."""
    from hmifbench.report import statistics

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = Results(score_paths)
    df = results.df
    written: dict[str, list[Path]] = {}

    def save(fig, name):
        if fig is not None:
            written[name] = _save(fig, out, name, formats)

    with plt.rc_context(STYLE), sns.axes_style("ticks"):
        for dataset, scene in chosen_scenes(df, scenes):
            for degradation in sorted(df.loc[df["dataset"] == dataset, "degradation"].unique()):
                title = f"{dataset} / {degradation} / {scene}"
                part = df[(df["dataset"] == dataset) & (df["degradation"] == degradation)
                          & (df["scene"] == scene)]
                data = load_scene(results, dataset, degradation, scene)
                if data is not None:
                    save(figure_maps(results, data, title), f"fig1_maps_{_slug(dataset, degradation, scene)}")
                    save(figure_spectra(results, data, title),
                         f"fig2_spectra_{_slug(dataset, degradation, scene)}")
                save(figure_degradation(results, part, title),
                     f"fig5_degradation_{_slug(dataset, degradation, scene)}")
                save(figure_convergence(results, part, title),
                     f"fig6_convergence_{_slug(dataset, degradation, scene)}")
        for (dataset, degradation), part in df.groupby(["dataset", "degradation"], sort=True):
            title = f"{dataset} / {degradation}"
            save(figure_distributions(results, part, title), f"fig3_distributions_{_slug(dataset, degradation)}")
            save(figure_cost(results, part, title), f"fig4_cost_{_slug(dataset, degradation)}")
            ok = part[part["status"] == "ok"]
            primary = primary_metric(order_metrics(m for m in metric_columns(part) if ok[m].notna().any()))
            if primary is None:
                continue
            values = ok.pivot_table(index="scene", columns="entry", values=primary, aggfunc="first")
            values = values.reindex(columns=[e for e in results.order if e in values.columns])
            rows, section = statistics.section_statistics(values, primary, n_resamples=0)
            ranked = [(r["entry"], r["mean_rank"]) for r in rows if np.isfinite(r["mean_rank"])]
            if len(ranked) >= 2:
                p = section["p_friedman"]
                ptext = f", Friedman p = {p:.3g}" if np.isfinite(p) else ""
                save(figure_cd(results, [e for e, _ in ranked], [r for _, r in ranked], section["cd"],
                               f"{title}: mean rank of {info(primary).label}, "
                               f"{section['n_scenes']} scenes{ptext}"),
                     f"fig7_cd_{_slug(dataset, degradation)}")
    return written
