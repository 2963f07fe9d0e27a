"""A tiny robustness sweep through the Snakemake workflow: known vs nominal on a PSF-σ sweep."""

import textwrap

import numpy as np
import pandas as pd
import pytest

from hmifbench.datasets import PROTOCOLS
from hmifbench.io import read_json
from tests.test_workflow import snakemake

pytestmark = pytest.mark.integration

CONFIG = textwrap.dedent('''
    seed: 0
    datasets:
      synthetic:
        scenes: [scene01, scene02]
        options: {size: 32}
    degradations: [gauss-fwhm-x4]
    sweeps:
      psf-sigma: {base: gauss-fwhm-x4, field: psf.sigma, values: [1.698644, 2.6]}
    methods:
      fuse-known: {method: fuse, setting: known}
      fuse-nominal: {method: fuse, setting: nominal}
      fuse-blind: {method: fuse, setting: blind}
''')

SWEPT = ["psf-sigma_psf.sigma-1.69864", "psf-sigma_psf.sigma-2.6"]


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("sweep")
    (work / "config.yaml").write_text(CONFIG)
    result = snakemake(work, "--cores", "2", timeout=1200)  # ~60 jobs
    assert result.returncode == 0, result.stderr[-3000:]
    return work


def test_every_sweep_value_is_simulated_fused_and_scored(sweep_run):
    per_scene = pd.read_csv(sweep_run / "results" / "tables" / "per_scene.csv")
    assert set(per_scene["degradation"]) == {"gauss-fwhm-x4", *SWEPT}
    assert set(per_scene["entry"]) == {"fuse-known", "fuse-nominal", "fuse-blind"}
    assert (per_scene["status"] == "ok").all()


def test_nominal_run_records_the_base_psf_beside_the_true_one(sweep_run):
    base = PROTOCOLS["gauss-fwhm-x4"].kernel()
    run = read_json(sweep_run / "results" / "fused" / "fuse-nominal" / "synthetic" / SWEPT[1] / "scene01"
                    / "run.json")
    truth = read_json(sweep_run / "results" / "pairs" / "synthetic" / SWEPT[1] / "scene01" / "truth.json")
    given, true = run["degradation"]["given"], run["degradation"]["true"]
    assert run["setting"] == "nominal" and given["protocol"] == "gauss-fwhm-x4"
    assert np.allclose(given["psf"], base) and np.allclose(true["psf"], truth["psf"])
    assert truth["protocol"]["psf"]["sigma"] == 2.6 and not np.allclose(truth["psf"], base, atol=1e-3)
    known = read_json(sweep_run / "results" / "fused" / "fuse-known" / "synthetic" / SWEPT[1] / "scene01"
                      / "run.json")
    assert np.allclose(known["degradation"]["given"]["psf"], truth["psf"])


def test_model_mismatch_costs_quality_only_off_the_base_value(sweep_run):
    per_scene = pd.read_csv(sweep_run / "results" / "tables" / "per_scene.csv")
    psnr = per_scene.groupby(["entry", "degradation"])["psnr"].mean()
    # at the base σ the nominal PSF is the true one: the same numbers
    assert psnr["fuse-nominal", SWEPT[0]] == pytest.approx(psnr["fuse-known", SWEPT[0]], abs=1e-6)
    # at σ 2.6 (+53 %) the method told σ 1.70 does worse than the one told the truth
    assert psnr["fuse-nominal", SWEPT[1]] < psnr["fuse-known", SWEPT[1]] - 0.1


def test_sweep_figure_and_table_agree_with_the_per_scene_table(sweep_run):
    sweeps = sweep_run / "results" / "sweeps"
    for name in ("psf-sigma_figure_synthetic.png", "psf-sigma_figure_synthetic.pdf",
                 "psf-sigma_estimation_synthetic.png", "psf-sigma_table_synthetic.md",
                 "psf-sigma_table_synthetic.html"):
        assert (sweeps / name).stat().st_size > 0, name
    per_scene = pd.read_csv(sweep_run / "results" / "tables" / "per_scene.csv")
    means = per_scene[per_scene["degradation"].isin(SWEPT)].groupby(["entry", "degradation"])["psnr"].mean()
    curves = pd.read_csv(sweeps / "psf-sigma_curves.csv")
    psnr = curves[curves["metric"] == "psnr"].set_index(["entry", "degradation"])
    # the base σ is one of the values, so the sweep's own points are its curve
    assert set(psnr.index) == set(means.index)
    for key, mean in means.items():
        assert psnr.loc[key, "mean"] == pytest.approx(mean)
        assert psnr.loc[key, "ci_low"] <= mean <= psnr.loc[key, "ci_high"]
    table = pd.read_csv(sweeps / "psf-sigma_table.csv")
    row = table[table["metric"] == "psnr"].set_index("entry")
    sigma = {SWEPT[0]: 1.698644, SWEPT[1]: 2.6}
    for entry in ("fuse-known", "fuse-nominal", "fuse-blind"):
        base, far = means[entry, SWEPT[0]], means[entry, SWEPT[1]]
        assert row.loc[entry, "base"] == pytest.approx(base)
        assert row.loc[entry, "worst"] == pytest.approx(min(base, far))
        assert row.loc[entry, "slope"] == pytest.approx((far - base) / (sigma[SWEPT[1]] - sigma[SWEPT[0]]))
    # only the blind entry estimated a PSF: its error is tabled, the others' is not
    est = table[table["metric"] == "psf_rel_error"]
    assert list(est["entry"]) == ["fuse-blind"] and est["base"].iloc[0] > 0


def test_shipped_robustness_configs_plan(tmp_path):
    """Both robustness studies build their DAG, each with its sweep results as a target."""
    from tests.test_workflow import REPO

    for name in ("robustness.yaml", "robustness-cave.yaml"):
        work = tmp_path / name
        work.mkdir()
        (work / "config.yaml").write_text((REPO / "config" / name).read_text())
        result = snakemake(work, "-n", timeout=600)
        out = result.stdout + result.stderr
        assert result.returncode == 0, out[-3000:]
        assert "report_sweeps" in out
