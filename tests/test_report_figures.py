"""Figures 1-7 from a hand-made finished run, and the per-pixel error maps they draw."""

import numpy as np
import pytest

from hmifbench import metrics
from hmifbench.cli import main
from hmifbench.report.figures import cd_cliques, method_colours, pick_pixels
from tests.report_fixtures import write_results

KINDS = ["fig1_maps", "fig2_spectra", "fig3_distributions", "fig4_cost", "fig5_degradation",
         "fig6_convergence", "fig7_cd"]


def test_error_maps_agree_with_rmse_and_sam():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 1, size=(9, 7, 5)).astype(np.float32)
    y = (x + rng.normal(0, 0.05, size=x.shape)).astype(np.float32)
    y[0, 0] = 0.0                                     # a zero spectrum: excluded from SAM
    rmse_map, sam_map = metrics.error_maps(x, y)
    assert rmse_map.shape == sam_map.shape == (9, 7)
    assert np.sqrt(np.mean(rmse_map ** 2)) == pytest.approx(metrics.rmse(x, y), rel=1e-5)
    assert np.isnan(sam_map[0, 0])
    assert np.nanmean(sam_map) == pytest.approx(metrics.sam(x, y), rel=1e-5)
    assert rmse_map[3, 4] == pytest.approx(np.sqrt(np.mean((x[3, 4] - y[3, 4]) ** 2.0)), rel=1e-6)


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    listing = root / "scores.txt"
    listing.write_text("\n".join(map(str, write_results(root))))
    out = root / "figures"
    assert main(["figures", "--scores-from", str(listing), "-o", str(out)]) == 0
    return out


def _nonblank_png(path):
    from matplotlib.image import imread

    img = imread(path)[..., :3]
    return img.std() > 0.05 and (img < 0.9).mean() > 0.01


@pytest.mark.parametrize("kind", KINDS)
def test_every_figure_written_and_not_blank(figures, kind):
    pngs = sorted(figures.glob(f"{kind}_*.png"))
    assert pngs, f"{kind} not written"
    for png in pngs:
        assert _nonblank_png(png), f"{png.name} is blank"
        pdf = png.with_suffix(".pdf")
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 2000


def test_figures_only_for_the_chosen_scene(tmp_path):
    listing = tmp_path / "scores.txt"
    listing.write_text("\n".join(map(str, write_results(tmp_path, n_scenes=2))))
    out = tmp_path / "f"
    assert main(["figures", "--scores-from", str(listing), "-o", str(out), "--scene",
                 "synthetic/scene02", "--formats", "png"]) == 0
    assert [p.name for p in out.glob("fig1_*")] == ["fig1_maps_synthetic_gauss-fwhm-x4_scene02.png"]
    assert not list(out.glob("*.pdf"))


def test_one_colour_per_method_colour_blind_palette():
    import seaborn as sns

    colours = method_colours(["a", "b", "c"])
    assert list(colours.values()) == sns.color_palette("colorblind", 3)
    assert len(set(colours.values())) == 3


def test_pixels_chosen_by_error():
    rmse = np.zeros((4, 4))
    rmse[2, 3] = 5.0
    rmse[1, 1] = 1.0
    data = {"outputs": {"m": (None, rmse, None)}}
    picked = pick_pixels(data)
    assert tuple(picked["highest error"]) == (2, 3)
    assert rmse[tuple(picked["median error"])] == np.median(rmse)


def test_cd_cliques_join_methods_closer_than_cd():
    ranks = np.array([1.0, 1.5, 2.9, 3.2, 4.5])
    assert cd_cliques(ranks, 1.0) == [(0, 1), (2, 3)]
    assert cd_cliques(ranks, 2.0) == [(0, 2), (1, 3), (2, 4)]
    assert cd_cliques(ranks, 0.1) == []
