"""Property-based tests: random headers, configs and image files give a correct read or a clear
error (InputError / ConfigError), never another exception, and never an allocation out of
proportion to the file.

The example counts keep the whole file well under a minute; ``deadline=None`` because the
shared CI machines' timing varies.
"""

from __future__ import annotations

import copy
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from hmifbench.errors import ConfigError, InputError
from hmifbench.io import ENVI_DTYPES, parse_envi_header, read_cube
from tests.conftest import REPO

def fast(examples: int):
    # tmp_path is shared by a test's examples: each example rewrites the same files.
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# --------------------------------------------------------------------------- ENVI

_junk = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
                max_size=12)
_dims = st.one_of(st.integers(-2, 5), st.sampled_from([10**6, 2**40]), _junk)
_header_fields = st.fixed_dictionaries({}, optional={
    "samples": _dims, "lines": _dims, "bands": _dims,
    "data type": st.one_of(st.sampled_from(sorted(ENVI_DTYPES) + [0, 6, 7, 9, 99]), _junk),
    "interleave": st.one_of(st.sampled_from(["bsq", "bil", "bip", "BIP", " bil ", "xyz", ""]), _junk),
    "byte order": st.one_of(st.sampled_from([0, 1, 2, -1]), _junk),
    "header offset": st.one_of(st.integers(-3, 40), _junk),
    "wavelength": st.one_of(st.lists(st.floats(300, 2500), max_size=6).map(
        lambda v: "{" + ", ".join(f"{x:.3f}" for x in v) + "}"), _junk),
    "wavelength units": st.sampled_from(["nm", "Micrometers", "unknown"]),
    "reflectance scale factor": st.one_of(st.sampled_from(["1", "1000", "0", "-2", "nan"]), _junk),
})


_valid_fields = st.fixed_dictionaries({
    "samples": st.integers(1, 5), "lines": st.integers(1, 5), "bands": st.integers(1, 5),
    "data type": st.sampled_from([1, 2, 3, 12, 13]),   # integers: random bytes are never NaN
    "interleave": st.sampled_from(["bsq", "bil", "bip", "BIP", " bil "]),
    "byte order": st.sampled_from([0, 1]), "header offset": st.integers(0, 40)})


def _with_one_field_from(other):
    """A valid header with one field replaced by a random (often invalid) value."""
    return st.tuples(_valid_fields, other).map(
        lambda pair: {**pair[0], **dict(list(pair[1].items())[:1])})


#: a third valid headers, a third valid but for one field, a third random fields
_headers = st.one_of(_valid_fields, _with_one_field_from(_header_fields), _header_fields)


def _expected_size(fields) -> int | None:
    """The .img size a header describes, or None when it does not describe one."""
    try:
        n = int(fields["samples"]) * int(fields["lines"]) * int(fields["bands"])
        item = np.dtype(ENVI_DTYPES[int(fields["data type"])]).itemsize
        return int(fields.get("header offset", 0)) + n * item
    except (KeyError, ValueError, TypeError):
        return None


@fast(150)
@given(fields=_headers, exact=st.booleans(), extra=st.integers(-8, 8), seed=st.integers(0, 2**16),
       garbage=st.lists(_junk, max_size=3))
def test_random_envi_headers_read_or_refuse(tmp_path, fields, exact, extra, seed, garbage):
    hdr = tmp_path / "r.hdr"
    lines = ["ENVI"] + [f"{k} = {v}" for k, v in fields.items()] + garbage
    hdr.write_text("\n".join(lines) + "\n")
    expected = _expected_size(fields)
    size = expected if exact and expected is not None and 0 <= expected <= 1 << 16 else abs(extra) * 37
    size = max(0, size + (0 if exact else extra))
    hdr.with_suffix(".img").write_bytes(np.random.default_rng(seed).bytes(size))
    tracemalloc.start()
    try:
        cube = read_cube(hdr)
    except InputError as err:
        assert "r.hdr" in str(err) or "r.img" in str(err)
        cube = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # uint8 data becomes float32 (4x); raw + result + a transposed copy, plus small change.
    assert peak <= 12 * size + (1 << 20)
    event("read" if cube is not None else "refused")
    if cube is not None:
        assert size == expected
        assert cube.shape == (int(fields["lines"]), int(fields["samples"]), int(fields["bands"]))
        assert cube.data.dtype == np.float32 and np.isfinite(cube.data).all()


@fast(200)
@given(text=st.text(max_size=300))
def test_envi_header_parser_never_raises_anything_else(text):
    try:
        fields = parse_envi_header(text, "x.hdr")
    except InputError as err:
        assert "x.hdr" in str(err)
        return
    assert all(isinstance(k, str) and k == k.lower() for k in fields)


# --------------------------------------------------------------------------- config

_json = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-5, 100), st.floats(allow_nan=False),
                               st.text(max_size=8)),
                     lambda kids: st.one_of(st.lists(kids, max_size=3),
                                            st.dictionaries(st.text(max_size=8), kids, max_size=3)),
                     max_leaves=6)


def _paths(obj, prefix=()):
    """Every key path of a nested dict (where a value can be replaced or added)."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))


@pytest.fixture(scope="module")
def base_config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@fast(60)
@given(data=st.data())
def test_random_configs_validate_or_name_the_key(base_config, data):
    from hmifbench.config import validate_config

    config = copy.deepcopy(base_config)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(list(_paths(config))))
        key = data.draw(st.one_of(st.sampled_from(["seed", "setting", "datasets", "methods", "degradations",
                                                   "metrics", "params", "scenes", "options", "split",
                                                   "resources", "mem_mb", "gsa", "synthetic", "profile",
                                                   "crop", "data_root", "allow_cpu_fallback"]),
                                  st.text(max_size=6)))
        value = data.draw(_json)
        target = config
        for k in path:
            target = target[k]
        if isinstance(target, dict):
            target[key] = value
    # Plugin folders are imported: keep random values from pointing at real folders.
    assume(config.get("plugins") in (None, []))
    try:
        validate_config(config)
        event("valid")
    except ConfigError as err:
        event("refused")
        assert "config key" in str(err) or "configuration" in str(err)


# --------------------------------------------------------------------------- PNG (CAVE bands)

def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width, height, depth, ctype, rows: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(rows))
            + _chunk(b"IEND", b""))


@fast(150)
@given(width=st.integers(0, 6), height=st.integers(0, 6), depth=st.sampled_from([1, 8, 16]),
       ctype=st.sampled_from([0, 2, 3, 4, 6]), seed=st.integers(0, 2**16), cut=st.integers(0, 200),
       flips=st.lists(st.integers(0, 300), max_size=3), declared=st.sampled_from([None, 2**31 - 1, 70000]))
def test_random_and_damaged_pngs_decode_or_refuse(tmp_path, width, height, depth, ctype, seed, cut, flips,
                                                  declared):
    from hmifbench.datasets.readers import decode_png, read_png_band

    rng = np.random.default_rng(seed)
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    stride = width * channels * max(depth, 8) // 8
    rows = b"".join(bytes([rng.integers(0, 5)]) + rng.bytes(stride) for _ in range(height))
    data = bytearray(_png(declared or width, height, depth, ctype, rows))
    for f in flips:
        if f < len(data):
            data[f] ^= 0x5A
    if cut:
        data = data[:max(8, len(data) - cut)]
    path = tmp_path / "band.png"
    path.write_bytes(bytes(data))
    for reader in (decode_png, lambda p: read_png_band(p)[0]):
        tracemalloc.start()
        try:
            arr = reader(path)
        except InputError as err:
            assert "band.png" in str(err)
            arr = None
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert peak <= 64 * len(data) + (4 << 20)
        event("decoded" if arr is not None else "refused")
        if arr is not None:
            assert arr.ndim in (2, 3) and arr.dtype in (np.uint8, np.uint16)


@fast(30)
@given(blob=st.binary(max_size=600))
def test_random_bytes_as_matlab_files_are_refused(tmp_path, blob):
    from hmifbench.datasets.ntire2018 import read_mat73 as _read_mat73

    path = tmp_path / "x.mat"
    path.write_bytes(blob)
    with pytest.raises(InputError, match="x.mat"):
        _read_mat73(path, "rad")


def test_hostile_png_header_declaring_a_huge_image_is_refused(tmp_path):
    """A 60-byte PNG claiming 2^31 x 2^31 pixels: an error, not an attempt to allocate them."""
    from hmifbench.datasets.readers import decode_png

    path = tmp_path / "huge.png"
    path.write_bytes(_png(2**31 - 1, 2**31 - 1, 16, 2, b"\0" * 10))
    with pytest.raises(InputError, match="huge.png"):
        decode_png(path)


def test_png_bomb_is_refused_before_inflating(tmp_path):
    """IDAT that inflates far beyond what IHDR declares is not inflated in full."""
    from hmifbench.datasets.readers import decode_png

    path = tmp_path / "bomb.png"
    path.write_bytes(_png(4, 4, 8, 0, bytes(64 << 20)))
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="bomb.png"):
            decode_png(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
    assert Path(path).stat().st_size < 200_000
