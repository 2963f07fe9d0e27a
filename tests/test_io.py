"""Cube I/O: ENVI round trip with wavelengths; atomic writes; clear errors."""

import numpy as np
import pytest

from hmifbench import Cube, read_cube, write_cube
from hmifbench.errors import InputError
from hmifbench.io import read_json, write_json


def test_envi_round_trip_keeps_data_and_wavelengths(tmp_path):
    rng = np.random.default_rng(0)
    cube = Cube(rng.random((9, 7, 31)), np.arange(400.0, 701.0, 10.0))
    path = write_cube(tmp_path / "a.hdr", cube)
    back = read_cube(path)
    assert back.data.dtype == np.float32 and back.shape == (9, 7, 31)
    np.testing.assert_array_equal(back.data, cube.data)
    np.testing.assert_allclose(back.wavelengths, cube.wavelengths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.hdr", "a.img"]


def test_spectral_reads_our_files(tmp_path):
    import spectral

    write_cube(tmp_path / "b.hdr", Cube(np.ones((4, 5, 3)), [450, 550, 650]))
    img = spectral.open_image(str(tmp_path / "b.hdr"))
    assert img.shape == (4, 5, 3)
    assert [float(w) for w in img.metadata["wavelength"]] == [450, 550, 650]


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import spectral.io.envi as envi

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(envi, "save_image", boom)
    with pytest.raises(OSError):
        write_cube(tmp_path / "c.hdr", np.zeros((2, 2, 2)))
    assert list(tmp_path.iterdir()) == []


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="missing.hdr: cube header not found"):
        read_cube(tmp_path / "missing.hdr")
    x = np.zeros((3, 3, 2), np.float32)
    write_cube(tmp_path / "d.hdr", x)
    raw = np.fromfile(tmp_path / "d.img", dtype=np.float32)
    raw[4] = np.nan
    raw.tofile(tmp_path / "d.img")
    with pytest.raises(InputError, match="d.hdr: cube contains NaN"):
        read_cube(tmp_path / "d.hdr")


def test_cube_validation():
    with pytest.raises(InputError, match="rows, cols, bands"):
        Cube(np.zeros((3, 3)))
    with pytest.raises(InputError, match="2 wavelengths given for a cube with 3 bands"):
        Cube(np.zeros((2, 2, 3)), [400, 500])
    with pytest.raises(InputError, match="strictly increasing"):
        Cube(np.zeros((2, 2, 2)), [500, 400])


def test_json_round_trip_with_infinities(tmp_path):
    write_json(tmp_path / "r.json", {"psnr": float("inf"), "a": np.float32(1.5), "v": np.arange(2)})
    assert read_json(tmp_path / "r.json") == {"psnr": "inf", "a": 1.5, "v": [0, 1]}
