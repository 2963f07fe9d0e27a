"""Readers of the real datasets, on fixtures made here in each real on-disk format.

The last tests rewrite real CAVE crops from ../shared/data/real into CAVE's PNG layout and
Harvard's .mat layout and read them back (skipped when that folder is absent).
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from hmifbench import Cube
from hmifbench.datasets import degrade, get_dataset
from hmifbench.datasets import download as dl
from hmifbench.datasets.readers import (CAVE_MOSSFUSE_TEST, CAVE_MOSSFUSE_TRAIN, CAVE_SCENES,
                                        CASI_WAVELENGTHS, crop_window, decode_png, ncalm_tiles,
                                        read_png_band)
from hmifbench.errors import InputError
from tests.fixtures.formats import (cave_counts, make_cave_zip, make_harvard_mat, make_harvard_tgz,
                                    make_houston, make_ntire_mat, png_bytes)

# rasterio's own calls of affine's deprecated `*`
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


@pytest.fixture(scope="module")
def cave_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cave")
    expected = make_cave_zip(root / "complete_ms_data.zip", scenes=("balloons", "beads"), size=12)
    dl.extract_archive(root / "complete_ms_data.zip", root / "complete_ms_data", "zip")
    return root, expected


# --------------------------------------------------------------------------- PNG decoding

@pytest.mark.parametrize("shape, dtype", [((9, 7), np.uint16), ((9, 7, 3), np.uint16), ((5, 6, 4), np.uint8),
                                          ((6, 5), np.uint8)])
def test_png_decoder_is_bit_exact_for_every_filter_type(tmp_path, shape, dtype):
    rng = np.random.default_rng(1)
    img = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    path = tmp_path / "x.png"
    path.write_bytes(png_bytes(img))                    # rows cycle through filters 0..4
    np.testing.assert_array_equal(decode_png(path), img)
    if img.ndim == 2:                                   # Pillow agrees for grey images
        from PIL import Image

        np.testing.assert_array_equal(np.array(Image.open(path)), img)


def test_png_decoder_agrees_with_opencv(tmp_path):
    cv2 = pytest.importorskip("cv2")
    img = np.random.default_rng(2).integers(0, 65535, (11, 13, 3)).astype(np.uint16)
    path = tmp_path / "rgb16.png"
    cv2.imwrite(str(path), img)                         # OpenCV's own encoder and filters
    np.testing.assert_array_equal(decode_png(path)[:, :, ::-1], img)


def test_multichannel_band_quirk(tmp_path):
    band = np.random.default_rng(3).integers(0, 65535, (6, 6)).astype(np.uint16)
    same = tmp_path / "same.png"
    same.write_bytes(png_bytes(np.repeat(band[:, :, None], 3, axis=2)))
    arr, notes = read_png_band(same)
    np.testing.assert_array_equal(arr, band)
    assert arr.dtype == np.uint16 and "identical channels" in notes[0]
    diff = tmp_path / "diff.png"
    rgb = np.stack([band, band // 2, band // 3], axis=2).astype(np.uint16)
    diff.write_bytes(png_bytes(rgb))
    arr, notes = read_png_band(diff)
    luma = rgb.astype(float) @ [0.2989, 0.5870, 0.1140]
    np.testing.assert_array_equal(arr, np.round(luma).astype(np.uint16))
    assert "luma" in notes[0]


# --------------------------------------------------------------------------- CAVE

def test_cave_reads_bands_by_index_and_scales_by_65535(cave_root):
    root, expected = cave_root
    cube, info = get_dataset("cave").read("balloons", root)
    assert cube.shape == (12, 12, 31) and cube.data.dtype == np.float32
    np.testing.assert_array_equal(cube.data, expected["balloons"])
    np.testing.assert_array_equal(cube.wavelengths, np.arange(400, 701, 10))
    assert info["normalisation"] == "16-bit counts / 65535" and info["crop"] is None
    assert get_dataset("cave").load("beads_ms", root).data[3, 4, 30] == expected["beads"][3, 4, 30]


def test_cave_watercolors_quirk(cave_root):
    root, expected = cave_root
    cube, info = get_dataset("cave").read("watercolors", root)
    np.testing.assert_array_equal(cube.data, expected["watercolors"])
    assert len(info["quirks"]) == 31 and "identical channels" in info["quirks"][0]


def test_cave_crop_options(cave_root):
    root, expected = cave_root
    ds = get_dataset("cave")
    full = expected["balloons"]
    np.testing.assert_array_equal(ds.load("balloons", root, crop=8).data, full[:8, :8])
    np.testing.assert_array_equal(ds.load("balloons", root, crop="4x6", position="centre").data, full[4:8, 3:9])
    cube, info = ds.read("balloons", root, crop=[4, 4], position="2,5")
    np.testing.assert_array_equal(cube.data, full[2:6, 5:9])
    assert info["crop"] == {"row": 2, "col": 5, "rows": 4, "cols": 4, "of": [12, 12]}
    with pytest.raises(InputError, match="does not fit"):
        ds.load("balloons", root, crop=8, position="6,0")
    with pytest.raises(InputError, match="larger than the image"):
        ds.load("balloons", root, crop=13)
    with pytest.raises(InputError, match="unknown options"):
        ds.load("balloons", root, size=3)
    assert crop_window((10, 20), None) == (0, 0, 10, 20)


def test_cave_splits_are_mossfuse_lists():
    ds = get_dataset("cave")
    train, test = ds.scenes("train"), ds.scenes("test")
    assert len(train) == 20 and len(test) == 12 and not set(train) & set(test)
    assert sorted(train + test) == sorted(CAVE_SCENES) == ds.scenes()
    assert set(test) == set(CAVE_MOSSFUSE_TEST) and set(train) == set(CAVE_MOSSFUSE_TRAIN)
    assert ds.scenes("mossfuse-test") == test
    with pytest.raises(InputError, match="no split"):
        ds.scenes("nope")


def _cave_scene_dir(tmp_path, scene="flowers", size=6):
    folder = tmp_path / f"{scene}_ms" / f"{scene}_ms"
    folder.mkdir(parents=True)
    counts = cave_counts(7, size)
    for k in range(1, 32):
        (folder / f"{scene}_ms_{k:02d}.png").write_bytes(png_bytes(counts[:, :, k - 1]))
    return folder


def test_cave_bad_files_name_the_file(tmp_path):
    ds = get_dataset("cave")
    folder = _cave_scene_dir(tmp_path)
    (folder / "flowers_ms_17.png").unlink()
    with pytest.raises(InputError, match=r"flowers_ms_17\.png: band 17"):
        ds.load("flowers", tmp_path)
    (folder / "flowers_ms_17.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"flowers_ms_17\.png: not a PNG"):
        ds.load("flowers", tmp_path)
    (folder / "flowers_ms_17.png").write_bytes(png_bytes(np.zeros((5, 6), np.uint16)))
    with pytest.raises(InputError, match=r"flowers_ms_17\.png: shape \(5, 6\) differs"):
        ds.load("flowers", tmp_path)
    (folder / "flowers_ms_17.png").write_bytes(png_bytes(np.zeros((6, 6), np.uint8)))
    cube, info = ds.read("flowers", tmp_path)
    assert any("8-bit" in q for q in info["quirks"])
    with pytest.raises(InputError, match="not found"):
        ds.load("clay", tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        ds.load("clay", tmp_path / "nowhere")


# --------------------------------------------------------------------------- Harvard

def test_harvard_tgz_layout_normalisation_and_splits(tmp_path):
    make_harvard_tgz(tmp_path / "CZ_hsdb.tgz", names=("img1", "imga1", "imgb2", "imgc3", "imgd4", "imge5"),
                     folder="CZ_hsdb", rows=10, cols=14, peak=0.37)
    make_harvard_tgz(tmp_path / "CZ_hsdbi.tgz", names=("imga2",), folder="CZ_hsdbi", rows=10, cols=14)
    root = tmp_path / "harvard"
    for name in ("CZ_hsdb", "CZ_hsdbi"):
        dl.extract_archive(tmp_path / f"{name}.tgz", root / name, "tar")
    ds = get_dataset("harvard")
    cube, info = ds.read("imga1", root)
    ref = make_harvard_mat(tmp_path / "again.mat", seed=1, rows=10, cols=14, peak=0.37)
    np.testing.assert_allclose(cube.data, ref / ref.max(), rtol=1e-6)
    assert cube.data.max() == 1.0 and info["scale_factor"] == pytest.approx(0.37)
    np.testing.assert_array_equal(cube.wavelengths, np.arange(420, 721, 10))
    np.testing.assert_allclose(ds.load("imga1", root, normalise="none").data, ref, rtol=1e-6)
    np.testing.assert_allclose(ds.load("imga1", root, normalise=0.5, crop="4x5", position="centre").data,
                               ref[3:7, 4:9] / 0.5, rtol=1e-6)
    splits = ds.splits(root)
    assert splits["daylight"] == ["img1", "imga1", "imgb2", "imgc3", "imgd4", "imge5"]
    assert splits["indoor"] == ["imga2"]
    assert splits["test"] == ["img1", "imge5"] and "imga1" in splits["train"]
    assert ds.scenes("test", root=root) == ["img1", "imge5"]
    with pytest.raises(InputError, match="root"):
        ds.scenes("test")


def test_harvard_bad_files(tmp_path):
    import scipy.io

    ds = get_dataset("harvard")
    (tmp_path / "broken.mat").write_bytes(b"garbage" * 20)
    with pytest.raises(InputError, match=r"broken\.mat: cannot read"):
        ds.load("broken", tmp_path)
    scipy.io.savemat(tmp_path / "noref.mat", {"data": np.zeros((2, 2, 31))})
    with pytest.raises(InputError, match=r"noref\.mat: no variable 'ref'"):
        ds.load("noref", tmp_path)
    scipy.io.savemat(tmp_path / "bands.mat", {"ref": np.ones((2, 2, 30))})
    with pytest.raises(InputError, match=r"bands\.mat: 'ref' must be rows x cols x 31"):
        ds.load("bands", tmp_path)
    scipy.io.savemat(tmp_path / "nan.mat", {"ref": np.full((2, 2, 31), np.nan)})
    with pytest.raises(InputError, match="NaN"):
        ds.load("nan", tmp_path)
    scipy.io.savemat(tmp_path / "zero.mat", {"ref": np.zeros((2, 2, 31))})
    with pytest.raises(InputError, match="all zeros"):
        ds.load("zero", tmp_path)
    with pytest.raises(InputError, match="normalise"):
        ds.load("zero", tmp_path, normalise="median")


# --------------------------------------------------------------------------- NTIRE 2018

def test_ntire_v73_axes_restored(tmp_path):
    import scipy.io

    folder = tmp_path / "NTIRE2018_Train1_Spectral"
    folder.mkdir()
    rad = make_ntire_mat(folder / "BGU_HS_00002.mat", rows=20, cols=12)
    with pytest.raises(NotImplementedError):                 # really v7.3: scipy refuses it
        scipy.io.loadmat(folder / "BGU_HS_00002.mat")
    ds = get_dataset("ntire2018")
    cube, info = ds.read("BGU_HS_00002", tmp_path)
    assert cube.shape == (20, 12, 31)
    np.testing.assert_allclose(cube.data, rad / rad.max(), rtol=1e-6)
    np.testing.assert_array_equal(cube.wavelengths, np.arange(400, 701, 10))
    assert "transposed" in info["layout"] and info["wavelengths_from"] == "file 'bands'"
    assert info["scale_factor"] == pytest.approx(rad.max())
    assert ds.splits(tmp_path)["train"] == ["BGU_HS_00002"]


def test_ntire_rejects_arad_and_bad_shapes(tmp_path):
    make_ntire_mat(tmp_path / "ARAD_HS_0001.mat", key="cube")
    with pytest.raises(InputError, match="ARAD"):
        get_dataset("ntire2018").load("ARAD_HS_0001", tmp_path)
    (tmp_path / "bad.mat").write_bytes(b"\x00" * 600)
    with pytest.raises(InputError, match=r"bad\.mat"):
        get_dataset("ntire2018").load("bad", tmp_path)
    with pytest.raises(InputError, match="not found"):
        get_dataset("ntire2018").load("BGU_HS_09999", tmp_path)


# --------------------------------------------------------------------------- NCALM (Houston)

@pytest.fixture(scope="module")
def houston(tmp_path_factory):
    root = tmp_path_factory.mktemp("ncalm")
    hsi, rgb = make_houston(root, rows=8, cols=12, scale=4)
    return root, hsi, rgb


def test_ncalm_hsi_window(houston):
    root, hsi, _ = houston
    ds = get_dataset("ncalm")
    cube, info = ds.read("r0c4", root, size=4)
    window = hsi[0:4, 4:8, :48].astype(np.float64)
    np.testing.assert_allclose(cube.data, window / window.max(), rtol=1e-6)
    np.testing.assert_array_equal(cube.wavelengths, CASI_WAVELENGTHS)
    assert info["window"] == {"row": 0, "col": 4, "rows": 4, "cols": 4}
    assert ds.load("full", root, normalise="none").shape == (8, 12, 48)
    assert ds.scenes("grid256")[:2] == ["r0c0", "r0c256"]     # before download: the documented size
    with pytest.raises(InputError, match="does not fit"):
        ds.load("r6c0", root, size=4)
    with pytest.raises(InputError, match="r<ROW>c<COL>"):
        ds.load("tile1", root)


def test_ncalm_real_pair_crosses_rgb_tiles(houston):
    root, hsi, rgb = houston
    ds = get_dataset("ncalm")
    lr, hr, scale = ds.pair("r0c4", root, scale=4, size=4)    # RGB columns 16..31, tiles split at 24
    assert scale == 4 and lr.shape == (4, 4, 48) and hr.shape == (16, 16, 3)
    np.testing.assert_allclose(hr.data, rgb[0:16, 16:32] / 255.0, atol=1e-6)
    _, hr2, _ = ds.pair("r4c8", root, scale=2, size=4)        # 2 x 2 block means of the 25 cm RGB
    block = rgb[16:32, 32:48].astype(float).reshape(8, 2, 8, 2, 3).mean(axis=(1, 3)) / 255.0
    np.testing.assert_allclose(hr2.data, block, atol=1e-5)


def test_ncalm_nodata_windows(tmp_path):
    make_houston(tmp_path, rows=8, cols=8, scale=2, nodata_corner=True)
    with pytest.raises(InputError, match="no-data"):
        get_dataset("ncalm").load("r0c0", tmp_path, size=4)
    assert get_dataset("ncalm").load("r0c0", tmp_path, size=4, max_nodata=0.5).shape == (4, 4, 48)
    assert ncalm_tiles(tmp_path, size=4) == ["r0c4", "r4c0", "r4c4"]


# --------------------------------------------------------------------------- WorldView-2

def test_wv2_ms_and_pan_pair(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(5)
    ms = rng.integers(1, 2047, (8, 6, 8)).astype(np.uint16)
    pan = rng.integers(1, 2047, (32, 24)).astype(np.uint16)
    for name, arr, res in (("s1_MS.tif", ms, 1.84), ("s1_PAN.tif", pan[:, :, None], 0.46)):
        with rasterio.open(tmp_path / name, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0],
                           count=arr.shape[2], dtype="uint16", crs="EPSG:32615",
                           transform=from_origin(500000, 3300000, res, res)) as ds:
            ds.write(np.moveaxis(arr, -1, 0))
    ds = get_dataset("wv2")
    assert ds.scenes("all", root=tmp_path) == ["s1"]
    cube = ds.load("s1", tmp_path)
    assert cube.shape == (8, 6, 8) and cube.wavelengths[0] == 427.0
    lr, hr, scale = ds.pair("s1", tmp_path, crop=4, position="2,1")
    assert scale == 4 and lr.shape == (4, 4, 8) and hr.shape == (16, 16, 1)
    np.testing.assert_allclose(hr.data[:, :, 0], pan[8:24, 4:20] / pan.max(), rtol=1e-6)
    np.testing.assert_allclose(lr.data, ms[2:6, 1:5] / ms.max(), rtol=1e-6)


# --------------------------------------------------------------------------- real cubes

def _real_cave_crops(real_data_dir):
    import scipy.io

    out = {}
    for folder, scene in (("cave_balloons_crop100", "balloons"), ("cave_feathers_crop150", "feathers")):
        mats = list((real_data_dir / folder).glob("*.mat"))
        if mats:
            out[scene] = scipy.io.loadmat(mats[0])["Omsi"]
    if not out:
        pytest.skip("no real CAVE crops")
    return out


def test_real_cave_crops_through_the_png_reader(tmp_path, real_data_dir):
    crops = _real_cave_crops(real_data_dir)
    for scene, omsi in crops.items():
        counts = np.round(omsi * 65536).astype(np.uint16)     # the crops are counts / 65536
        assert np.array_equal(counts.astype(np.float64) / 65536, omsi)
        folder = tmp_path / "complete_ms_data" / f"{scene}_ms" / f"{scene}_ms"
        folder.mkdir(parents=True)
        for k in range(31):
            (folder / f"{scene}_ms_{k + 1:02d}.png").write_bytes(png_bytes(counts[:, :, k]))
        cube = get_dataset("cave").load(scene, tmp_path, crop=96)
        np.testing.assert_allclose(cube.data, counts[:96, :96] / 65535.0, rtol=1e-6)
        # Real spectra are smooth: the reader kept the band order.
        d2 = np.abs(np.diff(cube.data, 2, axis=2)).mean()
        shuffled = cube.data[:, :, np.random.default_rng(0).permutation(31)]
        assert d2 < 0.5 * np.abs(np.diff(shuffled, 2, axis=2)).mean()
        pair = degrade(cube, "mossfuse-x32")
        assert pair.lr_hsi.shape == (3, 3, 31) and pair.hr_msi.shape == (96, 96, 3)


def test_real_cave_crop_as_harvard_and_ntire_files(tmp_path, real_data_dir):
    import scipy.io

    omsi = next(iter(_real_cave_crops(real_data_dir).values()))
    scipy.io.savemat(tmp_path / "imgz1.mat", {"ref": omsi, "lbl": np.zeros(omsi.shape[:2], np.uint8)})
    cube = get_dataset("harvard").load("imgz1", tmp_path)
    np.testing.assert_allclose(cube.data, omsi / omsi.max(), rtol=1e-6)
    pair = degrade(Cube(cube.data[:96, :96], cube.wavelengths), "srf-nikon-a")
    assert pair.truth["srf_name"] == "nikon-d700-a" and pair.lr_hsi.shape == (12, 12, 31)


def test_srf_tables_match_the_shared_real_files(real_data_dir):
    import scipy.io

    from hmifbench.datasets.srf import srf_for, srf_table

    ik = real_data_dir / "srf_ikonos" / "ikonos_spec_resp.mat"
    if ik.exists():
        m = scipy.io.loadmat(ik)["ikonos_sp"]
        nm, resp, names = srf_table("ikonos")
        np.testing.assert_array_equal(nm, m[:, 0])
        np.testing.assert_allclose(resp, m[:, 2:6], rtol=1e-8)
        assert names == ("blue", "green", "red", "nir")
    p = real_data_dir / "srf_nikon_d700" / "P_N_V2.mat"
    if p.exists():
        # UAL's P matrix is exactly Table B (create_F) with rows normalised: provenance check.
        srf, _ = srf_for("nikon-d700", np.arange(400, 701, 10.0))
        np.testing.assert_allclose(srf, scipy.io.loadmat(p)["P"], atol=1e-12)


def test_archive_member_order_does_not_matter(tmp_path):
    """Bands stored in a zip in reverse order are still stacked by their index."""
    expected = make_cave_zip(tmp_path / "z.zip", scenes=("cd",), size=4, quirk_scene=None)
    with zipfile.ZipFile(tmp_path / "z.zip") as zf:
        names = [n for n in zf.namelist() if n.endswith(".png")]
        assert names[0].endswith("_31.png")
        zf.extractall(tmp_path / "x")
    np.testing.assert_array_equal(get_dataset("cave").load("cd", tmp_path / "x").data, expected["cd"])
    assert io is not None


@pytest.mark.parametrize("describe, expected", [
    (lambda i: f"Band {i}", None),                      # a band number is not a wavelength
    (lambda i: f"{0.4 + 0.01 * i:.3f} um", [410.0, 420.0, 430.0]),
    (lambda i: f"{400 + 10 * i} nm", [410.0, 420.0, 430.0]),
])
def test_wavelengths_from_raster_metadata(tmp_path, describe, expected):
    import rasterio
    from rasterio.transform import from_origin

    from hmifbench.datasets.real import raster_wavelengths

    path = tmp_path / "d.tif"
    with rasterio.open(path, "w", driver="GTiff", width=2, height=2, count=3, dtype="uint8",
                       crs="EPSG:26915", transform=from_origin(271460, 3290891, 1, 1)) as ds:
        for i in range(1, 4):
            ds.set_band_description(i, describe(i))
    with rasterio.open(path) as ds:
        wl, _ = raster_wavelengths(ds, 3)
    if expected is None:
        assert wl is None
    else:
        np.testing.assert_allclose(wl, expected)
