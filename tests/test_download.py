"""The downloader against a loopback HTTP server: resume, mirrors, gates, hostile archives.

Everything is offline: every URL is redirected to 127.0.0.1 through ``base_url`` or a test
registry, and the fixtures are made here in the real formats.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile

import numpy as np
import pytest

from hmifbench.datasets import download as dl
from hmifbench.errors import HmifError
from tests.fixtures.formats import (make_cave_zip, make_houston_zip, make_ntire_mat, tar_with_member,
                                    tar_with_symlink, zip_with_member, zip_with_symlink)
from tests.fixtures.http_server import FileServer

# rasterio's own calls of affine's deprecated `*`
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")

FAST = {"progress": False, "timeout": 5.0, "retries": 2, "backoff": 0.0}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def cave_zip(tmp_path_factory):
    path = tmp_path_factory.mktemp("fx") / "complete_ms_data.zip"
    expected = make_cave_zip(path, scenes=("balloons",), size=8, quirk_scene=None)
    return path.read_bytes(), expected


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


@pytest.fixture
def test_registry(monkeypatch):
    """Add datasets to the registry for one test: ``add(name, files=[FileSpec...], gate=...)``."""
    specs = dict(dl.registry())

    def add(name, files, **fields):
        specs[name] = dl.DatasetSpec(name=name, title=f"test {name}", files=tuple(files), **fields)
        return specs[name]

    monkeypatch.setattr(dl, "registry", lambda: specs)
    return add


def assert_clean(d, archive_name="complete_ms_data.zip"):
    """After a failure: no manifest, no extraction (final or temporary), no file under its final name."""
    assert not (d / "manifest.json").exists()
    assert not (d / dl._archive_stem(archive_name)).exists()
    assert not list(d.glob(".*extracting"))
    assert not (d / "downloads" / archive_name).exists()


# --------------------------------------------------------------------------- plain download

def test_fresh_download_extracts_pins_and_writes_manifest(tmp_path, server, cave_zip):
    data, _ = cave_zip
    server.add("/m/complete_ms_data.zip", data)
    manifest = dl.download("cave", tmp_path, base_url=server.url("/m"), **FAST)
    d = tmp_path / "cave"
    assert manifest == d / "manifest.json"
    m = json.loads(manifest.read_text())
    paths = {f["path"]: f for f in m["files"]}
    png = "complete_ms_data/complete_ms_data/balloons_ms/balloons_ms/balloons_ms_07.png"
    assert png in paths
    assert paths[png]["sha256"] == dl.sha256_of(d / png)
    assert paths["downloads/complete_ms_data.zip"]["sha256"] == sha(data)
    # The registry publishes no checksum for CAVE: the first download is pinned.
    pins = json.loads((d / "pinned.json").read_text())["files"]
    assert pins["complete_ms_data.zip"]["sha256"] == sha(data)
    assert m["archives"][0]["checksum_source"] == "pinned now"
    # A second call finds the manifest intact and does nothing.
    n = len(server.requests)
    assert dl.download("cave", tmp_path, base_url=server.url("/m"), **FAST) == manifest
    assert len(server.requests) == n


def test_base_url_from_environment(tmp_path, server, cave_zip, monkeypatch):
    server.add("/env/complete_ms_data.zip", cave_zip[0])
    monkeypatch.setenv(dl.BASE_URL_ENV, server.url("/env"))
    assert dl.urls_for(dl.get_spec("cave").files[0]) == [server.url("/env/complete_ms_data.zip")]
    assert dl.download("cave", tmp_path, **FAST).exists()


def test_pinned_checksum_is_enforced_on_a_later_download(tmp_path, server, cave_zip):
    data, _ = cave_zip
    d = tmp_path / "cave"
    d.mkdir()
    (d / "pinned.json").write_text(json.dumps({"files": {"complete_ms_data.zip": {"sha256": "0" * 64}}}))
    server.add("/m/complete_ms_data.zip", data)
    with pytest.raises(dl.DownloadError, match="does not match"):
        dl.download("cave", tmp_path, base_url=server.url("/m"), **FAST)
    assert_clean(d)
    assert (d / "downloads" / "complete_ms_data.zip.sha256-mismatch").exists()


# --------------------------------------------------------------------------- resume

def test_cut_half_way_is_resumed_with_range(tmp_path, server, cave_zip):
    data, _ = cave_zip
    server.add("/m/complete_ms_data.zip", data)
    server.script("/m/complete_ms_data.zip", ["cut:0.5"])
    dl.download("cave", tmp_path, base_url=server.url("/m"), **FAST)
    gets = server.gets("/m/complete_ms_data.zip")
    assert gets[0][1] is None
    assert gets[1][1] == f"bytes={len(data) // 2}-"
    assert gets[1][2] == '"v1"'                           # If-Range with the ETag seen first
    assert dl.sha256_of(tmp_path / "cave/downloads/complete_ms_data.zip") == sha(data)


def test_interrupted_download_leaves_only_a_part_file_and_resumes_next_time(tmp_path, server, cave_zip):
    data, _ = cave_zip
    path = "/m/complete_ms_data.zip"
    server.add(path, data)
    server.script(path, ["cut:0.3", "cut:0.5", "cut:0.5"])  # every attempt of the first call dies
    d = tmp_path / "cave"
    with pytest.raises(dl.DownloadError, match="bytes kept"):
        dl.download("cave", tmp_path, base_url=server.url("/m"), **FAST)
    assert_clean(d)
    part = d / "downloads" / "complete_ms_data.zip.part"
    kept = part.stat().st_size
    assert 0 < kept < len(data)
    assert part.read_bytes() == data[:kept]
    dl.download("cave", tmp_path, base_url=server.url("/m"), **FAST)
    assert server.gets(path)[-1][1] == f"bytes={kept}-"
    assert not part.exists()
    assert dl.sha256_of(d / "downloads/complete_ms_data.zip") == sha(data)


def test_server_ignoring_range_restarts_from_zero(tmp_path, cave_zip):
    data, _ = cave_zip
    with FileServer(ignore_range=True) as server:
        path = "/m/complete_ms_data.zip"
        server.add(path, data)
        server.script(path, ["cut:0.5"])
        dl.download("cave", tmp_path, base_url=server.url("/m"), **FAST)
        assert server.gets(path)[1][1] is not None        # asked for a range, got the whole file
    assert dl.sha256_of(tmp_path / "cave/downloads/complete_ms_data.zip") == sha(data)
    assert (tmp_path / "cave/manifest.json").exists()


def test_complete_part_file_is_recognised_from_416(tmp_path, server, cave_zip):
    """Killed after the last byte but before verification: no byte is fetched again."""
    data, _ = cave_zip
    server.add("/m/complete_ms_data.zip", data)
    downloads = tmp_path / "cave" / "downloads"
    downloads.mkdir(parents=True)
    (downloads / "complete_ms_data.zip.part").write_bytes(data)
    (downloads / "complete_ms_data.zip.part.json").write_text(
        json.dumps({"url": server.url("/m/complete_ms_data.zip"), "etag": '"v1"'}))
    dl.download("cave", tmp_path, base_url=server.url("/m"), **FAST)
    assert [r[1] for r in server.requests] == [f"bytes={len(data)}-"]
    assert dl.sha256_of(downloads / "complete_ms_data.zip") == sha(data)


def test_server_error_is_retried(tmp_path, server, cave_zip):
    server.add("/m/complete_ms_data.zip", cave_zip[0])
    server.script("/m/complete_ms_data.zip", ["500", "500"])
    dl.download("cave", tmp_path, base_url=server.url("/m"), **FAST)
    assert len(server.gets("/m/complete_ms_data.zip")) == 3


# --------------------------------------------------------------------------- mirrors, HTML, hashes

def test_404_on_first_mirror_falls_back_to_the_next(tmp_path, server, test_registry):
    body = b"PK\x03\x04" + b"not really a zip"
    server.add("/b/file.bin", body)
    test_registry("t", [dl.FileSpec("file.bin", urls=(server.url("/a/file.bin"), server.url("/b/file.bin")),
                                    sha256=sha(body))])
    dl.download("t", tmp_path, **FAST)
    assert [r[0] for r in server.requests] == ["/a/file.bin", "/b/file.bin"]
    m = json.loads((tmp_path / "t/manifest.json").read_text())
    assert m["archives"][0]["url"].endswith("/b/file.bin")
    assert m["archives"][0]["checksum_source"] == "registry"


@pytest.mark.parametrize("action", ["html", "html-octet"])
def test_html_login_page_is_refused(tmp_path, server, cave_zip, action):
    server.add("/m/complete_ms_data.zip", cave_zip[0])
    server.script("/m/complete_ms_data.zip", [action])
    with pytest.raises(dl.DownloadError, match="HTML page"):
        dl.download("cave", tmp_path, base_url=server.url("/m"), **FAST)
    d = tmp_path / "cave"
    assert_clean(d)
    assert not list((d / "downloads").glob("*.part"))
    assert not (d / "pinned.json").exists()


def test_wrong_magic_bytes_are_refused(tmp_path, server):
    server.add("/m/complete_ms_data.zip", b"GIF89a" + bytes(100))
    with pytest.raises(dl.DownloadError, match="first bytes"):
        dl.download("cave", tmp_path, base_url=server.url("/m"), **FAST)
    assert_clean(tmp_path / "cave")


def test_hash_mismatch_is_quarantined_then_next_mirror_used(tmp_path, server, cave_zip, test_registry):
    data, _ = cave_zip
    server.add("/a/complete_ms_data.zip", data)
    server.add("/b/complete_ms_data.zip", data)
    server.script("/a/complete_ms_data.zip", ["garbage"])
    spec = dl.FileSpec("complete_ms_data.zip", urls=(server.url("/a/complete_ms_data.zip"),),
                       sha256=sha(data), archive="zip")
    test_registry("t", [spec])
    with pytest.raises(dl.DownloadError, match="sha256"):
        dl.download("t", tmp_path, **FAST)
    d = tmp_path / "t"
    assert_clean(d)
    assert (d / "downloads/complete_ms_data.zip.sha256-mismatch").exists()
    server.script("/a/complete_ms_data.zip", ["garbage"])
    test_registry("t", [dataclasses.replace(spec, urls=(server.url("/a/complete_ms_data.zip"),
                                                        server.url("/b/complete_ms_data.zip")))])
    dl.download("t", tmp_path, **FAST)
    assert (d / "manifest.json").exists()
    assert not (d / "pinned.json").exists()                # the registry's checksum, nothing to pin


def test_size_mismatch_is_refused(tmp_path, server, test_registry):
    server.add("/m/f.zip", b"PK\x03\x04" + bytes(10))
    test_registry("t", [dl.FileSpec("f.zip", urls=(server.url("/m/f.zip"),), size=999)])
    with pytest.raises(dl.DownloadError, match="999"):
        dl.download("t", tmp_path, **FAST)
    assert not (tmp_path / "t/manifest.json").exists()


# --------------------------------------------------------------------------- gates

def test_manual_gate_message_then_verify_placed_files(tmp_path):
    with pytest.raises(dl.ManualDownloadRequired) as err:
        dl.download("ntire2018", tmp_path, **FAST)
    msg = str(err.value)
    assert isinstance(err.value, HmifError)
    assert str(tmp_path / "ntire2018" / "downloads") in msg
    assert "NTIRE2018_Train1_Spectral.zip" in msg
    assert "hmifbench download ntire2018" in msg and "--verify" in msg
    assert not (tmp_path / "ntire2018" / "manifest.json").exists()
    # The user places extracted v7.3 files instead of the archives; --verify accepts them.
    placed = tmp_path / "ntire2018" / "NTIRE2018_Validate_Spectral"
    placed.mkdir(parents=True)
    make_ntire_mat(placed / "BGU_HS_00001.mat", rows=8, cols=6)
    manifest = dl.cli_download("ntire2018", tmp_path, verify_only=True)
    files = [f["path"] for f in json.loads(manifest.read_text())["files"]]
    assert files == ["NTIRE2018_Validate_Spectral/BGU_HS_00001.mat"]
    assert dl.verify("ntire2018", tmp_path) == manifest   # re-hash: still fine


def test_manual_gate_with_nothing_to_place_lists_instructions(tmp_path):
    with pytest.raises(dl.ManualDownloadRequired, match="NAME_MS.tif"):
        dl.download("wv2", tmp_path, **FAST)


def test_terms_gate_without_and_with_acceptance(tmp_path, server, test_registry):
    zpath = tmp_path / "phase2.zip"
    make_houston_zip(zpath, rows=4, cols=6, scale=2)
    data = zpath.read_bytes()
    server.add("/dfc/phase2.zip", data)
    real = dl.get_spec("ncalm")
    with zipfile.ZipFile(zpath) as zf:
        member = next(n for n in zf.namelist() if n.endswith(".pix"))
        inner = {member: sha(zf.read(member))}
    test_registry("ncalm", [dataclasses.replace(real.files[0], urls=(server.url("/dfc/phase2.zip"),),
                                                sha256=sha(data), inner_sha256=inner)],
                  gate="terms", terms_url=real.terms_url, licence=real.licence,
                  instructions=real.instructions, placed_glob=real.placed_glob)
    root = tmp_path / "root"
    with pytest.raises(dl.TermsNotAccepted) as err:
        dl.download("ncalm", root, **FAST)
    assert isinstance(err.value, dl.ManualDownloadRequired)
    assert "--accept-terms ncalm" in str(err.value)
    assert server.requests == []                          # nothing fetched before acceptance
    assert not (root / "ncalm" / "manifest.json").exists()
    manifest = dl.download("ncalm", root, accept_terms=["ncalm"], **FAST)
    assert any(f["path"].endswith(".pix") for f in json.loads(manifest.read_text())["files"])


def test_inner_checksum_mismatch_removes_the_extraction(tmp_path, server, test_registry):
    zpath = tmp_path / "a.zip"
    zip_with_member(zpath, "ok/data.txt", b"payload")
    data = zpath.read_bytes()
    server.add("/m/a.zip", data)
    test_registry("t", [dl.FileSpec("a.zip", urls=(server.url("/m/a.zip"),), sha256=sha(data), archive="zip",
                                    inner_sha256={"ok/data.txt": "1" * 64})])
    with pytest.raises(dl.DownloadError, match="published sha256"):
        dl.download("t", tmp_path / "r", **FAST)
    assert not (tmp_path / "r/t/a").exists()
    assert not (tmp_path / "r/t/manifest.json").exists()


# --------------------------------------------------------------------------- hostile archives

@pytest.mark.parametrize("maker, member, kind", [
    (zip_with_member, "../evil.txt", "zip"),
    (zip_with_member, "/tmp/hmifbench-evil.txt", "zip"),
    (zip_with_member, "ok/../../evil.txt", "zip"),
    (tar_with_member, "../evil.txt", "tar"),
    (tar_with_member, "/tmp/hmifbench-evil.txt", "tar"),
])
def test_path_traversal_members_are_refused(tmp_path, server, test_registry, maker, member, kind):
    name = f"bad.{'zip' if kind == 'zip' else 'tgz'}"
    src = tmp_path / name
    maker(src, member)
    server.add(f"/m/{name}", src.read_bytes())
    test_registry("t", [dl.FileSpec(name, urls=(server.url(f"/m/{name}"),), archive=kind)])
    root = tmp_path / "root"
    with pytest.raises(dl.DownloadError, match="unsafe"):
        dl.download("t", root, **FAST)
    assert_clean(root / "t", name)
    assert not (root / "evil.txt").exists() and not (root / "t" / "evil.txt").exists()
    assert (root / "t" / "downloads" / f"{name}.unsafe").exists()
    assert not (root / "t" / "pinned.json").exists()


@pytest.mark.parametrize("maker, kind", [(zip_with_symlink, "zip"), (tar_with_symlink, "tar")])
@pytest.mark.parametrize("target", ["../../outside", "/etc/passwd"])
def test_escaping_symlinks_are_refused(tmp_path, server, test_registry, maker, kind, target):
    name = f"link.{'zip' if kind == 'zip' else 'tgz'}"
    src = tmp_path / name
    maker(src, "ok/link", target)
    server.add(f"/m/{name}", src.read_bytes())
    test_registry("t", [dl.FileSpec(name, urls=(server.url(f"/m/{name}"),), archive=kind)])
    root = tmp_path / "root"
    with pytest.raises(dl.DownloadError, match="leaves the target"):
        dl.download("t", root, **FAST)
    assert_clean(root / "t", name)


def test_symlink_inside_the_target_is_allowed(tmp_path, server, test_registry):
    src = tmp_path / "in.tgz"
    tar_with_symlink(src, "ok/link", "readme.txt")
    server.add("/m/in.tgz", src.read_bytes())
    test_registry("t", [dl.FileSpec("in.tgz", urls=(server.url("/m/in.tgz"),), archive="tar")])
    dl.download("t", tmp_path, **FAST)
    assert (tmp_path / "t/in/ok/link").resolve().read_bytes() == b"fine"


def test_corrupt_zip_is_refused(tmp_path, server, cave_zip, test_registry):
    data = bytearray(cave_zip[0])
    data[200:260] = bytes(60)                             # damage member data, keep the signature
    server.add("/m/c.zip", bytes(data))
    test_registry("t", [dl.FileSpec("c.zip", urls=(server.url("/m/c.zip"),), archive="zip")])
    with pytest.raises(dl.DownloadError):
        dl.download("t", tmp_path, **FAST)
    assert_clean(tmp_path / "t", "c.zip")


# --------------------------------------------------------------------------- verify

def test_verify_detects_a_changed_file_and_drops_the_manifest(tmp_path, server, cave_zip):
    server.add("/m/complete_ms_data.zip", cave_zip[0])
    manifest = dl.download("cave", tmp_path, base_url=server.url("/m"), **FAST)
    assert dl.verify("cave", tmp_path) == manifest
    png = next((tmp_path / "cave").rglob("balloons_ms_03.png"))
    raw = bytearray(png.read_bytes())
    raw[-20] ^= 0xFF
    png.write_bytes(bytes(raw))
    with pytest.raises(dl.DownloadError, match="sha256 changed"):
        dl.verify("cave", tmp_path)
    assert not manifest.exists()


def test_registry_records_are_well_formed():
    reg = dl.registry()
    assert {"cave", "harvard", "ntire2018", "ncalm", "wv2"} <= set(reg)
    for name, spec in reg.items():
        assert spec.gate in ("none", "terms", "manual")
        assert spec.licence, name
        for f in spec.files:
            assert f.sha256 is None or len(f.sha256) == 64
            if spec.gate != "manual":
                assert f.urls and all(u.startswith(("http://", "https://")) for u in f.urls)
            if f.sha256 is None:
                assert f.note, f"{name}/{f.name}: a null checksum needs a note"
    with pytest.raises(HmifError, match="sha256"):
        dl.parse_registry({"datasets": {"x": {"gate": "none", "files": [{"name": "a", "sha256": "abc"}]}}})
    with pytest.raises(HmifError, match="gate"):
        dl.parse_registry({"datasets": {"x": {"gate": "maybe"}}})
    assert np.all([isinstance(f, dl.FileSpec) for f in reg["cave"].files])


def test_every_registry_dataset_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "datasets.md").read_text()
    for name in dl.registry():
        assert f"| `{name}` |" in doc, name


# --------------------------------------------------------------------------- integrity (issue 12)

def _tgz_bytes(members: dict[str, bytes]) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_tgz_with_a_wrong_crc_is_refused_not_pinned(tmp_path, server, test_registry):
    """Case 1: tarfile stops before the gzip trailer, so only reading to the end finds the CRC."""
    data = bytearray(_tgz_bytes({"scene/a.mat": bytes(range(256)) * 64}))
    data[-8] ^= 0xFF                                       # the gzip trailer's CRC-32
    server.add("/m/h.tgz", bytes(data))
    test_registry("t", [dl.FileSpec("h.tgz", urls=(server.url("/m/h.tgz"),), archive="tar")])
    with pytest.raises(dl.DownloadError, match="(?i)crc"):
        dl.download("t", tmp_path, **FAST)
    d = tmp_path / "t"
    assert_clean(d, "h.tgz")
    assert not (d / "pinned.json").exists()
    assert (d / "downloads" / "h.tgz.unsafe").exists()
    with pytest.raises(HmifError):                        # and --verify does not pass either
        dl.verify("t", tmp_path)


def test_truncated_tgz_is_refused(tmp_path, server, test_registry):
    data = _tgz_bytes({"scene/a.mat": bytes(range(256)) * 64})
    server.add("/m/h.tgz", data[:-20])
    test_registry("t", [dl.FileSpec("h.tgz", urls=(server.url("/m/h.tgz"),), archive="tar")])
    with pytest.raises(dl.DownloadError, match="(?i)end of the compressed stream|truncated"):
        dl.download("t", tmp_path, **FAST)
    assert_clean(tmp_path / "t", "h.tgz")


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_archive_bomb_is_refused_by_its_ratio(tmp_path, server, test_registry, kind):
    """Case 2: 16 MiB of zeros in a few kB."""
    name = "bomb.zip" if kind == "zip" else "bomb.tgz"
    src = tmp_path / name
    if kind == "zip":
        with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("ok/readme.txt", b"fine")
            zf.writestr("zeros.bin", bytes(16 << 20))
    else:
        src.write_bytes(_tgz_bytes({"ok/readme.txt": b"fine", "zeros.bin": bytes(16 << 20)}))
    assert src.stat().st_size < 100_000
    server.add(f"/m/{name}", src.read_bytes())
    test_registry("t", [dl.FileSpec(name, urls=(server.url(f"/m/{name}"),), archive=kind)])
    root = tmp_path / "root"
    with pytest.raises(dl.DownloadError, match="ratio") as err:
        dl.download("t", root, **FAST)
    assert "HMIFBENCH_MAX_EXTRACT_RATIO" in str(err.value)   # says how to accept it if trusted
    assert_clean(root / "t", name)
    assert not list((root / "t").rglob("zeros.bin"))
    assert not (root / "t" / "pinned.json").exists()


def test_archive_total_size_limit_from_the_registry_and_the_environment(tmp_path, server, test_registry,
                                                                        monkeypatch):
    payload = np.random.default_rng(0).bytes(200_000)     # incompressible: only the size limit applies
    src = tmp_path / "a.zip"
    zip_with_member(src, "ok/data.bin", payload)
    server.add("/m/a.zip", src.read_bytes())
    spec = dl.FileSpec("a.zip", urls=(server.url("/m/a.zip"),), archive="zip", extracted_size=50_000)
    test_registry("t", [spec])
    with pytest.raises(dl.DownloadError, match="expands to 200004 bytes") as err:
        dl.download("t", tmp_path / "r1", **FAST)
    assert "extracted_size" in str(err.value)
    assert_clean(tmp_path / "r1" / "t", "a.zip")
    test_registry("t", [dataclasses.replace(spec, extracted_size=None)])
    monkeypatch.setenv("HMIFBENCH_MAX_EXTRACT_BYTES", "100000")
    with pytest.raises(dl.DownloadError, match="HMIFBENCH_MAX_EXTRACT_BYTES"):
        dl.download("t", tmp_path / "r2", **FAST)
    assert_clean(tmp_path / "r2" / "t", "a.zip")
    monkeypatch.setenv("HMIFBENCH_MAX_EXTRACT_BYTES", "1000000")
    assert dl.download("t", tmp_path / "r3", **FAST).exists()


def test_archive_member_count_limit(tmp_path, server, test_registry, monkeypatch):
    src = tmp_path / "many.zip"
    with zipfile.ZipFile(src, "w") as zf:
        for i in range(30):
            zf.writestr(f"f/{i}.txt", b"x")
    server.add("/m/many.zip", src.read_bytes())
    test_registry("t", [dl.FileSpec("many.zip", urls=(server.url("/m/many.zip"),), archive="zip")])
    monkeypatch.setenv("HMIFBENCH_MAX_EXTRACT_MEMBERS", "20")
    with pytest.raises(dl.DownloadError, match="30 members"):
        dl.download("t", tmp_path, **FAST)
    assert_clean(tmp_path / "t", "many.zip")


@pytest.mark.parametrize("validator", ["etag", "last_modified"])
def test_resume_after_the_file_changed_upstream_restarts_from_zero(tmp_path, server, test_registry, validator):
    """Case 3: the server answers the range with 206 although the file changed (If-Range ignored)."""
    old = np.random.default_rng(1).bytes(50_000)
    new = np.random.default_rng(2).bytes(50_000)
    if validator == "last_modified":
        server.etag, server.last_modified = None, "Mon, 01 Jan 2024 00:00:00 GMT"
    server.add("/m/f.bin", old)
    server.script("/m/f.bin", ["cut:0.5"])
    test_registry("t", [dl.FileSpec("f.bin", urls=(server.url("/m/f.bin"),))])
    with pytest.raises(dl.DownloadError):
        dl.download("t", tmp_path, progress=False, timeout=5.0, retries=0, backoff=0.0)
    part = tmp_path / "t" / "downloads" / "f.bin.part"
    assert part.read_bytes() == old[:25_000]
    server.add("/m/f.bin", new)                            # the file changes upstream
    if validator == "etag":
        server.etag = "v2"
    else:
        server.last_modified = "Tue, 02 Jan 2024 00:00:00 GMT"
    dl.download("t", tmp_path, **FAST)
    got = (tmp_path / "t" / "downloads" / "f.bin").read_bytes()
    assert got == new                                      # not old[:25000] + new[25000:]
    pins = json.loads((tmp_path / "t" / "pinned.json").read_text())["files"]
    assert pins["f.bin"]["sha256"] == sha(new)


def test_resume_when_nothing_changed_still_uses_the_range(tmp_path, server, test_registry):
    body = np.random.default_rng(3).bytes(50_000)
    server.etag, server.last_modified = "same", "Mon, 01 Jan 2024 00:00:00 GMT"
    server.add("/m/f.bin", body)
    server.script("/m/f.bin", ["cut:0.5"])
    test_registry("t", [dl.FileSpec("f.bin", urls=(server.url("/m/f.bin"),))])
    dl.download("t", tmp_path, **FAST)
    assert server.gets("/m/f.bin")[-1][1] == "bytes=25000-"
    assert (tmp_path / "t/downloads/f.bin").read_bytes() == body


def test_truncated_plain_file_without_length_is_not_pinned(tmp_path, server, test_registry):
    """Case 4: no Content-Length, connection closed half way, no size or checksum to compare."""
    body = np.random.default_rng(4).bytes(40_000)
    server.add("/m/f.bin", body)
    server.script("/m/f.bin", ["nolength-cut:0.5"])
    test_registry("t", [dl.FileSpec("f.bin", urls=(server.url("/m/f.bin"),))])
    with pytest.raises(dl.DownloadError, match="no length") as err:
        dl.download("t", tmp_path, **FAST)
    assert "registry" in str(err.value)
    d = tmp_path / "t"
    assert not (d / "pinned.json").exists() and not (d / "manifest.json").exists()
    assert not (d / "downloads" / "f.bin").exists()


def test_plain_file_without_length_is_accepted_when_its_size_is_known(tmp_path, server, test_registry):
    body = np.random.default_rng(5).bytes(40_000)
    server.add("/m/f.bin", body)
    server.script("/m/f.bin", ["nolength-cut:0.5", "nolength"])
    test_registry("t", [dl.FileSpec("f.bin", urls=(server.url("/m/f.bin"),), size=len(body))])
    dl.download("t", tmp_path, **FAST)
    assert (tmp_path / "t/downloads/f.bin").read_bytes() == body


def test_extracted_files_and_records_follow_the_umask(tmp_path, server, cave_zip):
    """Case 9: not 0600/0700 whatever the umask (mkstemp/mkdtemp defaults)."""
    import os
    import stat

    server.add("/m/complete_ms_data.zip", cave_zip[0])
    old = os.umask(0o022)
    try:
        dl.download("cave", tmp_path, base_url=server.url("/m"), **FAST)
    finally:
        os.umask(old)
    d = tmp_path / "cave"
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(d / "complete_ms_data") == 0o755
    assert mode(d / "manifest.json") == 0o644
    assert mode(d / "pinned.json") == 0o644
    assert mode(d / "downloads" / "complete_ms_data.zip") == 0o644


class _FullDisk:
    """A file whose writes fail with ENOSPC once ``room`` bytes are written."""

    def __init__(self, fh, room):
        self.fh, self.room = fh, room

    def write(self, block):
        import errno
        import os

        if len(block) > self.room:
            self.fh.write(block[:self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(block)
        return self.fh.write(block)

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()


def test_disk_full_during_download_says_what_is_kept(tmp_path, server, test_registry, monkeypatch):
    """Case 10 (download): a message, the bytes written kept for resume."""
    import builtins

    body = np.random.default_rng(6).bytes(3 << 20)
    server.add("/m/f.bin", body)
    test_registry("t", [dl.FileSpec("f.bin", urls=(server.url("/m/f.bin"),), size=len(body))])

    def full_open(path, mode="r", *a, **k):
        fh = builtins.open(path, mode, *a, **k)
        return _FullDisk(fh, 1 << 20) if str(path).endswith(".part") and "b" in mode and "r" not in mode else fh

    monkeypatch.setattr(dl, "open", full_open, raising=False)
    with pytest.raises(dl.DownloadError) as err:
        dl.download("t", tmp_path, **FAST)
    msg = str(err.value)
    assert "No space left" in msg and "f.bin.part" in msg and "resume" in msg
    assert str(len(body)) in msg                           # how much was needed
    part = tmp_path / "t/downloads/f.bin.part"
    assert part.read_bytes() == body[:1 << 20]
    monkeypatch.delattr(dl, "open")
    dl.download("t", tmp_path, **FAST)
    assert server.gets("/m/f.bin")[-1][1] == f"bytes={1 << 20}-"


def test_disk_full_during_extraction_keeps_the_verified_archive(tmp_path, server, cave_zip, monkeypatch):
    """Case 10 (extraction): no traceback, no partial extraction, the archive not quarantined."""
    import errno
    import shutil

    server.add("/m/complete_ms_data.zip", cave_zip[0])

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", no_space)
    with pytest.raises(dl.DownloadError) as err:
        dl.download("cave", tmp_path, base_url=server.url("/m"), **FAST)
    msg = str(err.value)
    assert "No space left" in msg and "extracting" in msg and "bytes" in msg
    assert "downloads/complete_ms_data.zip" in msg
    d = tmp_path / "cave"
    assert not (d / "complete_ms_data").exists() and not list(d.glob(".*extracting"))
    assert (d / "downloads" / "complete_ms_data.zip").exists()   # kept: the next run only extracts
    monkeypatch.undo()
    n = len(server.requests)
    dl.download("cave", tmp_path, base_url=server.url("/m"), **FAST)
    assert len(server.requests) == n


def test_too_little_free_space_is_refused_before_extracting(tmp_path, server, cave_zip, monkeypatch):
    import shutil
    from collections import namedtuple

    server.add("/m/complete_ms_data.zip", cave_zip[0])
    usage = namedtuple("usage", "total used free")
    real = shutil.disk_usage
    monkeypatch.setattr(dl.shutil, "disk_usage",
                        lambda p: usage(10 ** 9, 10 ** 9 - 1000, 1000) if "cave" in str(p) else real(p))
    with pytest.raises(dl.DownloadError, match="1000 bytes free"):
        dl.download("cave", tmp_path, base_url=server.url("/m"), **FAST)
    assert not (tmp_path / "cave" / "complete_ms_data").exists()
