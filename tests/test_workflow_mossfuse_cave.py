"""config/mossfuse-cave.yaml end to end, offline: a loopback mirror serves the released
MossFuse checkpoint and a CAVE-format archive made from the shared real CAVE crops.

The crops are 100 and 150 pixels square, not CAVE's 512, so the run uses the CAVE reader's
``crop: 96`` (the top-left 96×96, a multiple of the scale 32: 3×3 LR pixels). Nothing is
padded or resampled: the pixels are CAVE's own 16-bit counts. Feathers and chart_and_stuffed_toy
are in MossFuse's *training* split, balloons in its test split, so this table checks the
pipeline, not the paper's number.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import REPO
from tests.fixtures.formats import png_bytes
from tests.fixtures.http_server import FileServer
from tests.test_workflow import snakemake

pytestmark = pytest.mark.integration

CROPS = {"balloons": "cave_balloons_crop100", "feathers": "cave_feathers_crop150"}


def cave_zip_from_crops(path, real_data_dir) -> None:
    """CAVE's ``complete_ms_data.zip`` layout (31 16-bit PNGs per scene) from the real crops,
    which store CAVE's counts divided by 65536."""
    import scipy.io

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for scene, folder in CROPS.items():
            mats = sorted((real_data_dir / folder).glob("*.mat"))
            if not mats:
                pytest.skip(f"{folder} is not available")
            omsi = scipy.io.loadmat(mats[0])["Omsi"]
            counts = np.round(omsi * 65536).astype(np.uint16)
            assert np.array_equal(counts / 65536.0, omsi)
            for k in range(31):
                zf.writestr(f"complete_ms_data/{scene}_ms/{scene}_ms/{scene}_ms_{k + 1:02d}.png",
                            png_bytes(counts[:, :, k]))


@pytest.mark.slow
def test_mossfuse_cave_config_downloads_fuses_and_tables(tmp_path, real_data_dir, mossfuse_reference_dir):
    from hmifbench import weights

    spec = weights.get_spec("mossfuse-cave-x32")
    archive = tmp_path / "complete_ms_data.zip"
    cave_zip_from_crops(archive, real_data_dir)
    config = yaml.safe_load((REPO / "config" / "mossfuse-cave.yaml").read_text())
    assert config["methods"]["mossfuse"] == {"params": {"weights": "mossfuse-cave-x32"}}
    assert config["metrics"]["profile"] == "mossfuse" and config["metrics"]["extra_profiles"] == ["canonical"]
    assert config["datasets"]["cave"] == {"split": "test"}
    # The shipped config, on the two crops at 96×96, with two of its linear baselines.
    config["datasets"]["cave"] = {"scenes": list(CROPS), "options": {"crop": 96}}
    config["methods"] = {name: config["methods"][name] for name in ("upsample", "gsa", "mossfuse")}
    config["methods"]["mossfuse"]["resources"] = {"threads": 1}
    with FileServer() as server:
        server.add("/mirror/complete_ms_data.zip", archive.read_bytes())
        server.add(f"/mirror/{spec.file}", (mossfuse_reference_dir / spec.file).read_bytes())
        config["download_base_url"] = server.url("/mirror")
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        result = snakemake(tmp_path, "--cores", "2", timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
        assert len(server.gets(f"/mirror/{spec.file}")) == 1
    assert (tmp_path / "resources" / "models" / spec.name / spec.file).is_file()
    assert not (tmp_path / "results" / "models").exists()    # no train job for released weights
    tables = tmp_path / "results" / "tables"
    for folder, profile in ((tables, "mossfuse"), (tables / "profile-canonical", "canonical")):
        per_scene = pd.read_csv(folder / "per_scene.csv")
        assert (per_scene["status"] == "ok").all() and set(per_scene["profile"]) == {profile}
        assert len(per_scene) == 3 * 2                         # methods × scenes
    summary = pd.read_csv(tables / "summary.csv")
    psnr = summary[(summary.metric == "psnr") & (summary.profile == "mossfuse")].set_index("entry")["mean"]
    # On real CAVE pixels the released weights are far above bicubic upsampling at x32.
    assert psnr["mossfuse"] > psnr["upsample"] + 5
    table = (tables / "summary.md").read_text()
    assert "profile mossfuse" in table and "| mossfuse |" in table
    assert "profile canonical" in (tables / "profile-canonical" / "summary.md").read_text()
    print(table)


@pytest.mark.parametrize("params, trains", [({"weights": "mossfuse-cave-x32"}, False),
                                            ({"mode": "dataset", "iterations": 1}, True)])
def test_released_weights_get_a_download_job_and_no_train_job(tmp_path, params, trains):
    """The DAG alone (a dry run): needs neither the network nor the shared data."""
    config = {"datasets": {"synthetic": {"scenes": ["scene01"], "train_scenes": ["scene02"],
                                         "options": {"size": 64}}},
              "degradations": ["mossfuse-x32"], "methods": {"mossfuse": {"params": params}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", "--cores", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert ("train_mossfuse" in result.stdout) == trains
    assert ("download_weights_mossfuse_cave_x32" in result.stdout) != trains
