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


# --------------------------------------------------------------------------- ENVI checks (issue 12)

def _edit_header(hdr, **fields):
    """Rewrite ``key = value`` lines of an ENVI header (keys with spaces given with _)."""
    lines = hdr.read_text().splitlines()
    for key, value in fields.items():
        key = key.replace("_", " ")
        lines = [ln for ln in lines if not ln.lower().startswith(key + " ")]
        if value is not None:
            lines.append(f"{key} = {value}")
    hdr.write_text("\n".join(lines) + "\n")


@pytest.fixture
def float_cube(tmp_path):
    x = np.random.default_rng(0).random((6, 5, 4)).astype(np.float32)
    return write_cube(tmp_path / "c.hdr", x), x


def test_data_type_that_does_not_match_the_file_size_is_refused(float_cube):
    """Case 5: uint16 declared over float32 data (the file is twice the declared size)."""
    hdr, _ = float_cube
    _edit_header(hdr, data_type=12)
    with pytest.raises(InputError, match=r"c\.img: 480 bytes, but c\.hdr declares 240") as err:
        read_cube(hdr)
    assert "data type" in str(err.value)


def test_img_longer_than_its_header_is_refused(float_cube):
    hdr, x = float_cube
    with open(hdr.with_suffix(".img"), "ab") as fh:
        fh.write(x.tobytes())
    with pytest.raises(InputError, match=r"c\.img: 960 bytes, but c\.hdr declares 480"):
        read_cube(hdr)


@pytest.mark.parametrize("field, value, message", [
    ("interleave", "xyz", "field 'interleave' must be bsq, bil or bip, got 'xyz'"),
    ("data_type", 99, "field 'data type'"),
    ("data_type", 6, "complex"),
    ("byte_order", 7, "field 'byte order' must be 0"),
    ("header_offset", -5, "field 'header offset'"),
    ("samples", "five", "field 'samples' must be a positive integer"),
    ("bands", 0, "field 'bands' must be a positive integer"),
    ("lines", None, "field 'lines' is missing"),
    ("wavelength", "{400, abc, 500, 600}", "field 'wavelength'"),
])
def test_bad_header_fields_are_named(float_cube, field, value, message):
    hdr, _ = float_cube
    _edit_header(hdr, **{field: value})
    with pytest.raises(InputError, match="c.hdr") as err:
        read_cube(hdr)
    assert message in str(err.value)


def test_absurd_header_is_refused_before_allocating(float_cube):
    hdr, _ = float_cube
    _edit_header(hdr, samples=10**6, lines=10**6, bands=1000)
    with pytest.raises(InputError, match=r"declares 4000000000000000 \(header offset 0 \+ 1000000 lines"):
        read_cube(hdr)


def test_not_an_envi_header(tmp_path):
    (tmp_path / "x.hdr").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(50))
    with pytest.raises(InputError, match="x.hdr: not an ENVI header"):
        read_cube(tmp_path / "x.hdr")


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("dtype, code, order", [(">u2", 12, 1), ("<i2", 2, 0), ("<f8", 5, 0), ("u1", 1, 0)])
def test_other_layouts_are_read_correctly(tmp_path, interleave, dtype, code, order):
    """Files hmifbench did not write: every interleave, byte order, type and a header offset."""
    rows, cols, bands = 3, 4, 5
    x = np.arange(rows * cols * bands).reshape(rows, cols, bands) % 200
    axes = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}[interleave]
    (tmp_path / "o.img").write_bytes(b"\0" * 7 + x.transpose(axes).astype(dtype).tobytes())
    (tmp_path / "o.hdr").write_text(
        f"ENVI\nsamples = {cols}\nlines = {rows}\nbands = {bands}\nheader offset = 7\nfile type = ENVI Standard\n"
        f"data type = {code}\ninterleave = {interleave}\nbyte order = {order}\n"
        "wavelength units = Micrometers\nwavelength = {0.4, 0.45, 0.5,\n 0.55, 0.6}\n")
    cube = read_cube(tmp_path / "o.hdr")
    np.testing.assert_array_equal(cube.data, x.astype(np.float32))
    np.testing.assert_allclose(cube.wavelengths, [400, 450, 500, 550, 600])


def test_atomic_writes_follow_the_umask(tmp_path):
    """Case 9: records and cubes are not 0600 whatever the umask (mkstemp's default)."""
    import os
    import stat

    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    for umask, expected in ((0o022, 0o644), (0o002, 0o664), (0o077, 0o600)):
        old = os.umask(umask)
        try:
            write_json(tmp_path / f"r{umask}.json", {"a": 1})
            hdr = write_cube(tmp_path / f"c{umask}.hdr", np.zeros((2, 2, 2)))
        finally:
            os.umask(old)
        assert mode(tmp_path / f"r{umask}.json") == expected
        assert mode(hdr) == expected and mode(hdr.with_suffix(".img")) == expected
