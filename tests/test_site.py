"""Site settings (site.yaml) and `hmifbench profile install`: no Snakemake run needed."""

import pytest
import yaml

from hmifbench.errors import ConfigError, HmifError
from hmifbench.profiles import PROFILE_FILE, install_profile, user_profile_root
from hmifbench.site import ENV_VAR, load_site, parse_site
from tests.conftest import REPO


def test_the_shipped_example_is_valid_and_maps_to_slurm_plugin_resources():
    site = load_site(REPO / "slurm" / "site.example.yaml")
    assert site.slurm_resources(gpu=False) == {"slurm_account": "proj123",
                                               "slurm_partition": "compute"}
    assert site.slurm_resources(gpu=True) == {"slurm_account": "proj123",
                                              "slurm_partition": "gpu"}
    assert site.gpu.max_gpus == 4 and site.cpu.max_mem_mb == 256000


def test_partition_settings_override_the_site_wide_ones_and_gpu_type_goes_to_gpu_jobs():
    site = parse_site({"qos": "normal", "partitions": {
        "cpu": {"name": "c", "constraint": "intel"},
        "gpu": {"name": "g", "qos": "gpuq", "gpu_model": "a100"}}})
    assert site.slurm_resources(False) == {"slurm_partition": "c", "qos": "normal",
                                           "constraint": "intel"}
    assert site.slurm_resources(True) == {"slurm_partition": "g", "qos": "gpuq",
                                          "gpu_model": "a100"}


def test_without_a_gpu_partition_gpu_jobs_use_the_cpu_one():
    site = parse_site({"partitions": {"cpu": {"name": "all"}}})
    assert site.slurm_resources(True) == {"slurm_partition": "all"}


def test_no_site_file_means_slurm_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert load_site(repo=tmp_path).slurm_resources(True) == {}


@pytest.mark.parametrize("data, key", [
    ({"acount": "x"}, "key acount: unknown key"),
    ({"partitions": {"gpu": {"name": "g", "max_mem_mb": "lots"}}}, "key partitions.gpu.max_mem_mb"),
    ({"partitions": {"cpu": {"max_threads": 4}}}, "key partitions.cpu: 'name' is a required"),
    ({"partitions": {"cpu": {"name": "c", "gpu_model": "a100"}}}, "key partitions.cpu.gpu_model"),
    ({"partitions": {"gpu": {"name": "g", "max_gpus": -1}}}, "key partitions.gpu.max_gpus"),
])
def test_errors_name_the_key(tmp_path, data, key):
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_site(path)
    assert key in str(err.value) and str(path) in str(err.value)


def test_a_missing_file_named_by_the_environment_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match=ENV_VAR):
        load_site()


@pytest.fixture
def config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "snakemake"


def test_profile_install_goes_where_snakemake_looks_and_is_idempotent(config_home, monkeypatch):
    from snakemake.cli import get_profile_dir
    import snakemake.common

    monkeypatch.setattr(snakemake.common, "APPDIRS", None)  # Snakemake caches its folders
    assert user_profile_root() == config_home
    first = install_profile("slurm")
    assert first["action"] == "written" and first["path"] == config_home / "slurm" / PROFILE_FILE
    assert first["path"].read_bytes() == (REPO / "slurm" / PROFILE_FILE).read_bytes()
    assert install_profile("slurm")["action"] == "unchanged"
    # Snakemake itself now resolves the bare name from a folder without a slurm/ of its own
    monkeypatch.chdir(config_home.parent)
    folder, file = get_profile_dir("slurm")
    assert file == first["path"]


def test_profile_install_refuses_a_different_profile_unless_forced(config_home, capsys):
    from hmifbench.cli import main

    mine = config_home / "local" / "profile.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text("executor: local\n")
    with pytest.raises(HmifError, match="--force"):
        install_profile("local")
    assert mine.read_text() == "executor: local\n"
    assert main(["profile", "install", "local"]) == 2  # the CLI reports it, no traceback
    assert main(["profile", "install", "local", "--force"]) == 0
    out = capsys.readouterr().out
    assert f"replaced: {config_home / 'local' / PROFILE_FILE}" in out
    assert (config_home / "local.backup" / "profile.yaml").read_text() == "executor: local\n"
    assert sorted(p.name for p in (config_home / "local").iterdir()) == [PROFILE_FILE]
