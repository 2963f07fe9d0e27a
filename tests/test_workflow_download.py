"""The workflow fetches a real-format dataset from a loopback server, then runs on it."""

import json
import textwrap

import pandas as pd
import pytest

from tests.fixtures.formats import make_cave_zip
from tests.fixtures.http_server import FileServer
from tests.test_workflow import snakemake

pytestmark = pytest.mark.integration


def test_cave_is_downloaded_verified_and_benchmarked(tmp_path):
    archive = tmp_path / "complete_ms_data.zip"
    make_cave_zip(archive, scenes=("balloons", "beads"), size=16, quirk_scene=None)
    with FileServer() as server:
        server.add("/mirror/complete_ms_data.zip", archive.read_bytes())
        (tmp_path / "config.yaml").write_text(textwrap.dedent(f'''
            data_root: data
            download_base_url: {server.url("/mirror")}
            datasets:
              cave: {{scenes: [balloons, beads]}}
            degradations: [gauss-fwhm-x4]
            methods: {{upsample: {{}}, gsa: {{}}}}
        '''))
        result = snakemake(tmp_path, "--cores", "2")
        assert result.returncode == 0, result.stderr[-3000:]
        assert len(server.gets("/mirror/complete_ms_data.zip")) == 1
    manifest = json.loads((tmp_path / "data" / "cave" / "manifest.json").read_text())
    assert any(f["path"].endswith("balloons_ms_31.png") for f in manifest["files"])
    record = json.loads((tmp_path / "results" / "scenes" / "cave" / "balloons.json").read_text())
    assert record["reader"]  # the reader's account (source, normalisation) is kept
    per_scene = pd.read_csv(tmp_path / "results" / "tables" / "per_scene.csv")
    assert set(per_scene["dataset"]) == {"cave"} and (per_scene["status"] == "ok").all()
    assert len(per_scene) == 4
