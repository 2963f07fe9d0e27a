"""The registry of released weights and their download (loopback server only)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from hmifbench import weights
from hmifbench.datasets.download import DownloadError
from hmifbench.datasets.models import download_weights
from hmifbench.errors import InputError
from tests.fixtures.http_server import FileServer

PAYLOAD = b"PK\x03\x04" + bytes(range(256)) * 200


@pytest.fixture
def fake_release(monkeypatch):
    """A registry holding one release whose file is PAYLOAD."""
    spec = weights.WeightsSpec(name="tiny-x4", method="mossfuse", file="tiny.pth",
                               urls=("http://127.0.0.1:9/unused/tiny.pth",),
                               sha256=hashlib.sha256(PAYLOAD).hexdigest(), size=len(PAYLOAD))
    monkeypatch.setattr(weights, "registry", lambda: {"tiny-x4": spec})
    return spec


def test_registered_release_is_complete_and_pinned():
    spec = weights.get_spec("mossfuse-cave-x32")
    assert spec.method == "mossfuse" and spec.file == "CAVE_32_model.pth"
    assert spec.size == 2515283
    assert spec.sha256 == "8f9a4526df3f587b425cce56cf14952de58f3df2ab8fb25137670d44bccef348"
    commit = "878207caeebd24b7e8d28f3aaefbfa6e2fa5cf22"
    assert spec.urls and all(commit in u and u.startswith("https://") for u in spec.urls)
    assert "never redistributed" in spec.licence and "2412.04802" in spec.citation
    assert spec.config == {"width": 48, "blocks": 1, "heads": 8, "decoupling": True, "scale": 32,
                           "bands": 31, "msi_bands": 3, "psf_size": 31}
    assert weights.available("mossfuse") == ["mossfuse-cave-x32"] and weights.available("gsa") == []


def test_registry_records_are_validated():
    good = {"method": "m", "file": "w.pth", "urls": ["https://x/w.pth"], "sha256": "0" * 64, "size": 3}
    assert weights.parse_registry({"weights": {"a": good}})["a"].size == 3
    for bad in ({**good, "sha256": "abc"}, {**good, "file": "../w.pth"}, {k: v for k, v in good.items() if k != "urls"}):
        with pytest.raises(InputError):
            weights.parse_registry({"weights": {"a": bad}})


def test_download_verifies_and_resumes(tmp_path, fake_release):
    with FileServer() as server:
        server.add("/m/tiny.pth", PAYLOAD)
        server.script("/m/tiny.pth", ["cut:0.4", "ok"])
        path = download_weights("tiny-x4", tmp_path, base_url=server.url("/m"), progress=False, backoff=0)
        assert path == tmp_path / "tiny-x4" / "tiny.pth" and path.read_bytes() == PAYLOAD
        ranges = [r for p, r, _ in server.requests if p == "/m/tiny.pth"]
        assert ranges[0] is None and ranges[1].startswith("bytes=")   # resumed, not restarted
        assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.pth"]
        # In place and intact: checked, not fetched again.
        n = len(server.requests)
        assert download_weights("tiny-x4", tmp_path, base_url=server.url("/m"), progress=False) == path
        assert len(server.requests) == n
    assert weights.resolve("tiny-x4", tmp_path) == (path, fake_release)


def test_wrong_bytes_never_take_the_file_name(tmp_path, fake_release):
    with FileServer() as server:
        server.add("/m/tiny.pth", PAYLOAD)
        server.script("/m/tiny.pth", ["garbage"] * 10)
        with pytest.raises(DownloadError, match="sha256"):
            download_weights("tiny-x4", tmp_path, base_url=server.url("/m"), progress=False,
                             retries=0, backoff=0)
    assert not (tmp_path / "tiny-x4" / "tiny.pth").exists()


def test_a_changed_file_is_refused_by_download_and_by_resolve(tmp_path, fake_release):
    dest = fake_release.path(tmp_path)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(PAYLOAD[:-1] + b"x")
    with pytest.raises(DownloadError, match="does not match"):
        download_weights("tiny-x4", tmp_path, base_url="http://127.0.0.1:9", progress=False)
    with pytest.raises(InputError, match="does not match the registry"):
        weights.resolve("tiny-x4", tmp_path)
    dest.unlink()
    with pytest.raises(InputError, match="hmifbench download --model tiny-x4"):
        weights.resolve("tiny-x4", tmp_path)


def test_models_root_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.MODELS_ROOT_ENV, str(tmp_path / "m"))
    assert weights.get_spec("mossfuse-cave-x32").path() == tmp_path / "m" / "mossfuse-cave-x32" / "CAVE_32_model.pth"
    monkeypatch.delenv(weights.MODELS_ROOT_ENV)
    assert str(weights.models_root()) == "resources/models"


def _cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "hmifbench.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env)


def test_cli_downloads_the_released_checkpoint(tmp_path, mossfuse_reference_dir):
    spec = weights.get_spec("mossfuse-cave-x32")
    with FileServer() as server:
        server.add(f"/m/{spec.file}", (mossfuse_reference_dir / spec.file).read_bytes())
        r = _cli("download", "--model", spec.name, "--root", str(tmp_path), "--base-url",
                 server.url("/m"), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(tmp_path / spec.name / spec.file)
    r = _cli("download", "--model", spec.name, "--root", str(tmp_path), "--verify")
    assert r.returncode == 0, r.stderr


def test_cli_download_needs_exactly_one_target():
    for args in (["download"], ["download", "cave", "--model", "mossfuse-cave-x32"]):
        r = _cli(*args)
        assert r.returncode == 2 and "--model" in r.stderr
    r = _cli("download", "--model", "no-such-weights")
    assert r.returncode == 2 and "no registered weights" in r.stderr


def test_methods_lists_the_released_weights(tmp_path):
    r = _cli("methods")
    assert r.returncode == 0 and "mossfuse-cave-x32" in r.stdout and "hmifbench download --model" in r.stdout
    listed = json.loads(_cli("methods", "--json").stdout)["weights"]
    assert listed["mossfuse-cave-x32"]["method"] == "mossfuse"
    assert listed["mossfuse-cave-x32"]["config"]["scale"] == 32
