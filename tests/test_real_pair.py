"""Real pairs: the ``files`` dataset (a user's HS + MS/PAN files), Wald's protocol, and the
Hyperion/ALI-PAN pair over Paris fused blind (no-reference at full resolution; full-reference
under Wald's protocol)."""

import numpy as np
import pytest

from hmifbench.cube import Cube
from hmifbench.datasets import get_dataset, wald_pair
from hmifbench.errors import InputError
from hmifbench.io import write_cube
from hmifbench.method import FusionProblem
from hmifbench.methods import get
from hmifbench.metrics import psnr, qnr, sam

BLIND = ["fuse", "cnmf", "hysure", "ltmr"]


def write_geotiff(path, data):
    import rasterio
    from rasterio.transform import from_origin

    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data[:, :, None]
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[0], width=data.shape[1],
                       count=data.shape[2], dtype="float32",
                       transform=from_origin(1000.0, 2000.0, 10.0, 10.0)) as ds:
        ds.write(np.moveaxis(data, -1, 0))


# ---- the files dataset and Wald's protocol ---------------------------------------------------

def test_files_dataset_reads_envi_and_geotiff_pairs(tmp_path):
    rng = np.random.default_rng(0)
    hs = rng.random((6, 8, 5)).astype(np.float32) * 2
    ms = rng.random((18, 24, 2)).astype(np.float32) * 100
    write_cube(tmp_path / "a_HS.hdr", Cube(hs, [450, 500, 550, 600, 650]))
    write_geotiff(tmp_path / "a_PAN.tif", ms)
    ds = get_dataset("files")
    assert ds.scenes("all", root=tmp_path) == ["a"]
    lr, msi, scale = ds.pair("a", root=tmp_path)
    assert scale == 3 and msi.shape == (18, 24, 2)
    np.testing.assert_allclose(lr.wavelengths, [450, 500, 550, 600, 650])
    np.testing.assert_allclose(lr.data, hs / hs.max(), rtol=1e-6)
    np.testing.assert_allclose(msi.data, ms / ms.max(), rtol=1e-6)
    # Crop in HS pixels; the MS window follows. Wavelengths from the option override the file's.
    lr, msi, _ = ds.pair("a", root=tmp_path, crop="3x4", position="1,2",
                         wavelengths=[1.0, 2, 3, 4, 5], normalise="none")
    np.testing.assert_array_equal(lr.data, hs[1:4, 2:6])
    np.testing.assert_array_equal(msi.data, ms[3:12, 6:18])
    assert lr.wavelengths.tolist() == [1, 2, 3, 4, 5]
    with pytest.raises(InputError, match="not an integer multiple"):
        write_geotiff(tmp_path / "b_MS.tif", ms[:17])
        write_cube(tmp_path / "b_HS.hdr", Cube(hs))
        ds.pair("b", root=tmp_path)
    with pytest.raises(InputError, match="no c_HS"):
        ds.pair("c", root=tmp_path)
    with pytest.raises(InputError, match="3 wavelengths"):
        ds.pair("a", root=tmp_path, wavelengths=[1.0, 2, 3])
    with pytest.raises(InputError, match="unknown options"):
        ds.pair("a", root=tmp_path, sacle=3)


def test_files_dataset_in_a_config_is_checked():
    from hmifbench.datasets.options import config_option_errors

    errors = config_option_errors({"files": {"real_pairs": {"options": {"scale": 0, "foo": 1}}}})
    assert any("real_pairs.options.scale" in e for e in errors)
    assert any("real_pairs.options.foo" in e for e in errors)


def test_wald_pair_degrades_both_images_by_the_scale():
    rng = np.random.default_rng(1)
    hs = Cube(rng.random((10, 11, 4)).astype(np.float32), [1.0, 2, 3, 4])
    ms = rng.random((30, 33, 1)).astype(np.float32)
    lr, msi, ref = wald_pair(hs, ms, 3)
    assert ref.shape == (9, 9, 4) and lr.shape == (3, 3, 4) and msi.shape == (9, 9, 1)
    np.testing.assert_array_equal(ref.data, hs.data[:9, :9])
    assert ref.wavelengths.tolist() == [1, 2, 3, 4]
    with pytest.raises(InputError, match="does not cover"):
        wald_pair(hs, ms[:20], 3)


# ---- the Hyperion / ALI-PAN pair --------------------------------------------------------------

@pytest.fixture(scope="module")
def paris(real_data_dir, tmp_path_factory):
    """The pair read through the ``files`` dataset: HS as ENVI, PAN as GeoTIFF, as a user would
    bring it (each image divided by its own maximum: their radiometric scales differ)."""
    import scipy.io

    mat = scipy.io.loadmat(real_data_dir / "hyperion_ali_pan_paris" / "paris_data_hs_pan.mat")
    folder = tmp_path_factory.mktemp("paris")
    write_cube(folder / "paris_HS.hdr", Cube(mat["HSim"].astype(np.float32)))
    write_geotiff(folder / "paris_PAN.tif", mat["PCim"])
    return get_dataset("files").pair("paris", root=folder)


@pytest.mark.real_data
def test_paris_blind_full_resolution_no_reference(paris):
    lr, pan, scale = paris
    assert scale == 3 and lr.shape == (72, 58, 128) and pan.shape == (216, 174, 1)
    # A 48×48 HS window (144×144 PAN) keeps the no-reference scoring fast.
    lr, pan = Cube(lr.data[:48, :48], lr.wavelengths), pan.data[:144, :144]
    problem = FusionProblem(lr, pan, scale)
    for name in ("hysure", "fuse"):
        fused = get(name).fuse(problem)
        scores = qnr(fused.hr_hsi, lr, pan, scale)
        assert 0.85 < scores["qnr"] <= 1, (name, scores)
        # The PAN's radiometric scale is not the HS's (estimated gain ≈ 0.46): with the gain
        # and offset estimated, the output stays near the HSI's range (before, blind HySure's
        # output spanned −0.72 to 2.04 on this pair).
        assert abs(fused.msi_gain[0] - 1.0) > 0.3, name
        assert fused.hr_hsi.min() > -0.1 and fused.hr_hsi.max() < 1.3, name


@pytest.mark.real_data
def test_paris_wald_protocol_every_blind_method_beats_upsample(paris):
    lr, pan, scale = paris
    reduced_hsi, reduced_pan, reference = wald_pair(lr, pan, scale)
    problem = FusionProblem(reduced_hsi, reduced_pan, scale)
    floor = psnr(reference.data, get("upsample").fuse(problem).hr_hsi)
    for name in BLIND:
        out = get(name).fuse(problem).hr_hsi
        assert psnr(reference.data, out) > floor + 0.5, name
        assert np.isfinite(sam(reference.data, out))


def test_files_pair_through_the_stages(tmp_path):
    """prepare-pair → fuse (blind) → evaluate (no reference), as the workflow's real track."""
    from hmifbench import stages
    from tests.test_radiometry import shaded

    x, problem = shaded(32, 4)
    folder = tmp_path / "data" / "files"
    write_cube(folder / "s1_HS.hdr", Cube(problem.lr_hsi, np.linspace(400, 700, x.shape[2])))
    write_geotiff(folder / "s1_MS.tif", 3.0 * problem.hr_msi + 0.1)   # another sensor's scale
    stages.prepare_pair("files", "s1", tmp_path / "pair", root=tmp_path / "data")
    run = stages.fuse("fuse", tmp_path / "pair", tmp_path / "out", setting="blind")
    assert run["status"] == "ok" and len(run["msi_gain"]) == 3
    scores = stages.evaluate(tmp_path / "out" / "run.json", None, tmp_path / "pair",
                             tmp_path / "scores.json")
    assert scores["profile"] == "no-reference" and 0 < scores["scores"]["qnr"] <= 1
    assert scores["degradation_scores"] == {}
