"""Sweep results (hmifbench.report.sweeps): curves with bootstrap bands, base/worst/slope
tables, estimation errors, failed runs, figures; on score records written by hand."""

import json
import math

import pandas as pd
import pytest

from hmifbench.report.records import load_scores
from hmifbench.report.statistics import bootstrap_ci
from hmifbench.report.sweeps import (axis_value, entry_styles, figure_sweep, slope, sweep_axes,
                                     sweep_curves, sweep_runs, sweep_table, write_sweeps)
from tests.report_fixtures import SCENES, score_record, write_score

BASE_SIGMA = 1.698644  # gauss-fwhm-x4's σ
PSF_SWEEP = {"psf": {"base": "gauss-fwhm-x4", "field": "psf.sigma", "values": [1.0, 2.4]}}
OFFSETS = [-0.3, 0.0, 0.3]  # per-scene deviations: the mean over three scenes is exact


def _record(entry, degradation, scene, psnr, sam=3.0, *, method=None, setting="known",
            status="ok", estimate=None):
    rec = score_record(entry, scene, {"psnr": psnr, "sam": sam}, method=method or entry,
                       family="linear", status=status, degradation=degradation)
    rec["setting"] = setting
    if estimate is not None:
        rec["degradation_scores"] = {"psf": {"rel_frobenius": estimate},
                                     "srf": {"rel_frobenius": estimate / 2}}
    return rec


def _write(root, entries, failed=()):
    """``entries``: {entry: (method, setting, f(σ) -> PSNR)} over the base protocol and the
    psf sweep's two values; ``failed``: (entry, degradation, scene) recorded as failed."""
    paths = []
    degradations = {"gauss-fwhm-x4": BASE_SIGMA, "psf_psf.sigma-1": 1.0, "psf_psf.sigma-2.4": 2.4}
    for entry, (method, setting, f) in entries.items():
        for degradation, sigma in degradations.items():
            for scene, off in zip(SCENES[:3], OFFSETS):
                status = "failed" if (entry, degradation, scene) in failed else "ok"
                rec = _record(entry, degradation, scene, f(sigma) + off, method=method,
                              setting=setting, status=status,
                              estimate=abs(sigma - BASE_SIGMA) + 0.1 if setting == "blind" else None)
                paths.append(write_score(root, rec))
    return paths


ENTRIES = {
    "fuse-known": ("fuse", "known", lambda s: 50.0 - 2.0 * s),
    "fuse-nominal": ("fuse", "nominal", lambda s: 48.0 - 10.0 * abs(s - BASE_SIGMA)),
    "fuse-blind": ("fuse", "blind", lambda s: 46.0),
    "gsa": ("gsa", "known", lambda s: 40.0 + 1.0 * s),
}


def test_axis_values_and_base():
    (axis,) = sweep_axes(PSF_SWEEP)
    assert axis.base == "gauss-fwhm-x4" and axis.base_x == pytest.approx(BASE_SIGMA)
    assert axis.label == "PSF σ (HR px)"
    assert [x for x, _ in axis.points.values()] == [1.0, 2.4]
    shift = sweep_axes({"m": {"base": "gauss-fwhm-x4", "field": "misregistration.shift_lr",
                              "values": [[0, 0.5], [0.3, 0.4]]}})[0]
    # no misregistration in the base is a shift of 0; a shift sits at its length
    assert shift.base_x == 0.0 and [x for x, _ in shift.points.values()] == [0.5, pytest.approx(0.5)]
    assert shift.label == "HSI shift ‖(dy, dx)‖ (LR px)"
    snr = sweep_axes({"n": {"base": "gauss-fwhm-x4", "field": "snr_hsi_db", "values": [30, 20]}})[0]
    assert math.isnan(snr.base_x) and snr.base_text == "no noise" and snr.label == "HSI SNR (dB)"
    assert math.isnan(axis_value("srf", "nikon-d700"))


def test_slope_is_least_squares_over_finite_points():
    assert slope([1, 2, 4], [3, 5, 9]) == pytest.approx(2.0)
    assert slope([1, 2, 3, 4], [0, 1, 0, 1]) == pytest.approx(0.2)     # not the end-to-end 1/3
    assert slope([1, 2, math.nan, 3], [1, 2, 5, math.nan]) == pytest.approx(1.0)
    assert math.isnan(slope([2, 2], [1, 3])) and math.isnan(slope([1], [1]))


def test_base_worst_and_slope(tmp_path):
    df = load_scores(_write(tmp_path, ENTRIES))
    (axis,) = sweep_axes(PSF_SWEEP)
    runs = sweep_runs(df, axis)
    # the base protocol's runs stand in for the base point (its value is not in the sweep)
    assert set(runs.loc[runs["is_base"], "degradation"]) == {"gauss-fwhm-x4"}
    table = sweep_table(sweep_curves(runs, "psnr", n_resamples=200), higher_better=True)
    t = table.set_index("entry")
    assert t.loc["fuse-known", "base"] == pytest.approx(50 - 2 * BASE_SIGMA)
    assert t.loc["fuse-known", "worst"] == pytest.approx(50 - 2 * 2.4)
    assert t.loc["fuse-known", "worst_at"] == "2.4"
    assert t.loc["fuse-known", "slope"] == pytest.approx(-2.0)   # dB per HR px
    assert t.loc["gsa", "slope"] == pytest.approx(1.0) and t.loc["gsa", "worst_at"] == "1"
    assert t.loc["fuse-blind", "slope"] == pytest.approx(0.0, abs=1e-9)
    # the nominal entry is best at the base and worst at the value farthest from it
    assert t.loc["fuse-nominal", "base"] == pytest.approx(48.0)
    assert t.loc["fuse-nominal", "worst"] == pytest.approx(48.0 - 10 * (2.4 - BASE_SIGMA))
    assert t.loc["fuse-nominal", "worst_at"] == "2.4"
    assert (t["failed"] == 0).all() and (t["n_points"] == 3).all()
    # SAM: lower is better, so the worst is the highest
    sam = sweep_table(sweep_curves(runs, "sam", n_resamples=0), higher_better=False)
    assert (sam["worst"] == 3.0).all()


def test_band_is_the_bootstrap_interval_over_scenes(tmp_path):
    df = load_scores(_write(tmp_path, ENTRIES))
    (axis,) = sweep_axes(PSF_SWEEP)
    curves = sweep_curves(sweep_runs(df, axis), "psnr", seed=3, n_resamples=500)
    again = sweep_curves(sweep_runs(df, axis), "psnr", seed=3, n_resamples=500)
    pd.testing.assert_frame_equal(curves, again)                  # seeded
    for r in curves.itertuples():
        scene_values = [r.mean + o for o in OFFSETS]
        assert r.n_values == 3 and r.ci_low <= r.mean <= r.ci_high
        assert min(scene_values) - 1e-9 <= r.ci_low and r.ci_high <= max(scene_values) + 1e-9
        assert r.ci_high - r.ci_low > 0.1                          # the ±0.3 dB spread shows
        # the same interval statistics.bootstrap_ci gives for those values with that seed
        low, high = bootstrap_ci(scene_values, 500, seed=3 + _group(curves, r))
        assert (r.ci_low, r.ci_high) == pytest.approx((low, high))


def _group(curves, row):
    """Index of the row's (dataset, entry, degradation) group in sorted order (the seed offset)."""
    keys = sorted(set(zip(curves["dataset"], curves["entry"], curves["degradation"])))
    return keys.index((row.dataset, row.entry, row.degradation))


def test_failed_runs_are_counted_not_dropped(tmp_path):
    failed = {("gsa", "psf_psf.sigma-2.4", s) for s in SCENES[:3]} | {("fuse-known", "psf_psf.sigma-1", "scene02")}
    df = load_scores(_write(tmp_path, ENTRIES, failed=failed))
    (axis,) = sweep_axes(PSF_SWEEP)
    curves = sweep_curves(sweep_runs(df, axis), "psnr", n_resamples=100)
    point = curves[(curves["entry"] == "gsa") & (curves["value"] == "2.4")].iloc[0]
    assert point["n_failed"] == 3 and point["n_ok"] == 0 and math.isnan(point["mean"])
    t = sweep_table(curves, higher_better=True).set_index("entry")
    assert t.loc["gsa", "failed"] == 3 and t.loc["gsa", "failed_at"] == "2.4"
    assert t.loc["gsa", "n_points"] == 2
    assert t.loc["fuse-known", "failed"] == 1 and t.loc["fuse-known", "failed_at"] == "1"


def test_snr_sweep_base_comes_from_the_base_protocol_off_the_axis(tmp_path):
    paths = []
    for degradation, value in (("gauss-fwhm-x4", 45.0), ("n_snr_hsi_db-30", 40.0), ("n_snr_hsi_db-20", 30.0)):
        for scene in SCENES[:3]:
            paths.append(write_score(tmp_path, _record("mtf_glp", degradation, scene, value)))
    df = load_scores(paths)
    (axis,) = sweep_axes({"n": {"base": "gauss-fwhm-x4", "field": "snr_hsi_db", "values": [30, 20]}})
    curves = sweep_curves(sweep_runs(df, axis), "psnr", n_resamples=0)
    t = sweep_table(curves, higher_better=True).iloc[0]
    assert t["base"] == 45.0 and t["worst"] == 30.0 and t["worst_at"] == "20"
    assert t["slope"] == pytest.approx(1.0)       # 1 dB of PSNR per dB of SNR, base left out
    assert t["n_points"] == 3


def test_styles_tie_the_settings_of_one_method(tmp_path):
    df = load_scores(_write(tmp_path, ENTRIES))
    styles = entry_styles(df, list(ENTRIES))
    assert styles["fuse-known"]["color"] == styles["fuse-nominal"]["color"] == styles["fuse-blind"]["color"]
    assert styles["gsa"]["color"] != styles["fuse-known"]["color"]
    assert [styles[e]["linestyle"] for e in ("fuse-known", "fuse-nominal", "fuse-blind")] == ["-", "--", ":"]


def test_figure_axes_are_labelled(tmp_path):
    import matplotlib.pyplot as plt

    df = load_scores(_write(tmp_path, ENTRIES))
    (axis,) = sweep_axes(PSF_SWEEP)
    curves = sweep_curves(sweep_runs(df, axis), "psnr", n_resamples=100)
    fig = figure_sweep([("PSNR (dB) ↑", curves)], entry_styles(df, list(ENTRIES)), axis, "t")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "PSF σ (HR px)" and ax.get_ylabel() == "PSNR (dB) ↑"
    assert len(ax.get_lines()) >= len(ENTRIES) + 1          # one per entry and the base line
    assert len(ax.collections) == len(ENTRIES)              # one band per entry
    plt.close(fig)


def test_write_sweeps_writes_figures_tables_and_estimation(tmp_path):
    failed = {("gsa", "psf_psf.sigma-2.4", s) for s in SCENES[:3]}
    paths = _write(tmp_path, ENTRIES, failed=failed)
    out = tmp_path / "sweeps"
    written = write_sweeps(paths, PSF_SWEEP, out, n_resamples=100, formats=("png",))
    for name in ("psf_figure_synthetic.png", "psf_estimation_synthetic.png", "psf_table.csv",
                 "psf_curves.csv", "psf_table_synthetic.md", "psf_table_synthetic.html"):
        assert (out / name).stat().st_size > 0, name
    assert set(written) >= {"psf_figure_synthetic", "psf_estimation_synthetic", "psf_table"}
    table = pd.read_csv(out / "psf_table.csv")
    est = table[table["metric"] == "psf_rel_error"].set_index("entry")
    assert list(est.index) == ["fuse-blind"]                 # only the blind entry estimated
    assert est.loc["fuse-blind", "base"] == pytest.approx(0.1)
    assert str(est.loc["fuse-blind", "worst_at"]) == "2.4"        # |2.4 − 1.699| > |1 − 1.699|
    md = (out / "psf_table_synthetic.md").read_text()
    assert "| PSNR (dB) ↑ | gsa | known | 41.70 | 41.00 at 1 | +1.000 | dB per HR px | 3 (2.4) |" in md
    assert "| PSNR (dB) ↑ | fuse-blind | blind | 46.00 | 46.00 at 1 | 0 |" in md
    html = (out / "psf_table_synthetic.html").read_text()
    assert "fuse-nominal" in html


def test_cli_reads_the_sweeps_from_a_config_and_refuses_none(tmp_path):
    import subprocess
    import sys

    paths = _write(tmp_path, ENTRIES)
    listing = tmp_path / "scores.txt"
    listing.write_text("\n".join(map(str, paths)))
    config = {"datasets": {"synthetic": {"scenes": ["scene01"]}}, "degradations": ["gauss-fwhm-x4"],
              "sweeps": PSF_SWEEP, "methods": {"gsa": {}}}
    (tmp_path / "c.yaml").write_text(json.dumps(config))
    cli = [sys.executable, "-m", "hmifbench.cli", "sweeps", "--scores-from", str(listing)]
    done = subprocess.run(cli + ["--config", str(tmp_path / "c.yaml"), "-o", str(tmp_path / "out"),
                                 "--formats", "png", "--bootstrap", "50"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "psf_figure_synthetic.png").exists()
    refused = subprocess.run(cli + ["-o", str(tmp_path / "none")], capture_output=True, text=True)
    assert refused.returncode != 0 and "no sweeps given" in refused.stderr


def test_figure_marks_failed_values_and_entries(tmp_path):
    import matplotlib.pyplot as plt

    failed = ({("gsa", "psf_psf.sigma-2.4", s) for s in SCENES[:3]}
              | {("fuse-blind", d, s) for d in ("gauss-fwhm-x4", "psf_psf.sigma-1", "psf_psf.sigma-2.4")
                 for s in SCENES[:3]})
    df = load_scores(_write(tmp_path, ENTRIES, failed=failed))
    (axis,) = sweep_axes(PSF_SWEEP)
    curves = sweep_curves(sweep_runs(df, axis), "psnr", n_resamples=50)
    fig = figure_sweep([("PSNR", curves)], entry_styles(df, list(ENTRIES)), axis, "t")
    ax = fig.axes[0]
    assert "failed" in [t.get_text() for t in ax.texts]
    labels = ax.get_legend_handles_labels()[1]
    assert "fuse-blind (failed)" in labels and "gsa" in labels     # failed everywhere vs once
    plt.close(fig)


def test_only_the_primary_profile_is_swept(tmp_path):
    paths = []
    for degradation, value in (("gauss-fwhm-x4", 45.0), ("psf_psf.sigma-1", 40.0), ("psf_psf.sigma-2.4", 30.0)):
        for scene in SCENES[:2]:
            rec = _record("gsa", degradation, scene, value)
            rec["profiles"] = ["canonical", "mossfuse"]
            rec["scores_by_profile"] = {"canonical": {"psnr": value}, "mossfuse": {"psnr": value + 100}}
            paths.append(write_score(tmp_path, rec))
    write_sweeps(paths, PSF_SWEEP, tmp_path / "out", n_resamples=0, formats=("png",))
    curves = pd.read_csv(tmp_path / "out" / "psf_curves.csv")
    psnr = curves[curves["metric"] == "psnr"]
    assert sorted(psnr["mean"]) == [30.0, 40.0, 45.0] and (psnr["n_ok"] == 2).all()
