"""Device choice inside a job: a GPU method gets the GPU it was given, or fails loudly.

No GPU is needed: ``hmifbench.device.cuda_available`` is replaced by a stub, and the fake
GPU method is the ``gpu_probe`` test plugin (tests/cluster/plugins), a Method subclass that
declares ``resources.gpu = 1`` and fuses like ``upsample``.
"""

import pytest

from hmifbench import device, registry
from hmifbench.cli import main
from hmifbench.io import read_json

PLUGINS = str((__import__("pathlib").Path(__file__).parent / "plugins").resolve())


@pytest.fixture
def gpu(monkeypatch):
    """Set whether torch "sees" a GPU; CUDA_VISIBLE_DEVICES as SLURM would set it."""

    def set_gpu(visible: bool):
        monkeypatch.setattr(device, "cuda_available", lambda: visible)
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0" if visible else "")

    return set_gpu


@pytest.mark.parametrize("requested, wants_gpu, visible, fallback, expected", [
    ("auto", True, True, False, "cuda"),    # GPU method, GPU given: runs on it
    ("auto", True, False, True, "cpu"),     # GPU method, none visible, fallback allowed
    ("auto", False, True, False, "cpu"),    # CPU method never takes a visible GPU
    ("auto", False, False, False, "cpu"),
    ("cpu", True, True, False, "cpu"),      # explicit request wins
    ("cuda:0", False, True, False, "cuda:0"),
])
def test_resolve_device(gpu, requested, wants_gpu, visible, fallback, expected):
    gpu(visible)
    assert device.resolve_device(requested, wants_gpu, fallback) == expected


@pytest.mark.parametrize("requested, wants_gpu", [("auto", True), ("cuda", False)])
def test_missing_gpu_is_an_error_naming_the_fix(gpu, requested, wants_gpu):
    gpu(False)
    with pytest.raises(device.DeviceError, match="CUDA_VISIBLE_DEVICES"):
        device.resolve_device(requested, wants_gpu, allow_cpu_fallback=False)


@pytest.fixture
def probes(monkeypatch):
    """The probe plugin folder registered for this test only."""
    monkeypatch.setattr(registry, "_extra_paths", list(registry._extra_paths))
    registry.refresh()
    yield
    monkeypatch.undo()
    registry.refresh()


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair")
    assert main(["prepare", "synthetic", "scene01", "-o", str(root / "s.hdr"), "--option", "size=32"]) == 0
    assert main(["simulate", str(root / "s.hdr"), "gauss-fwhm-x4", "-o", str(root / "pair")]) == 0
    return root / "pair"


def fuse(pair, out, *extra):
    return main(["fuse", "gpu_probe", str(pair), "-o", str(out), f"--plugins={PLUGINS}", *extra])


def test_gpu_plugin_without_gpu_fails_by_hand(gpu, probes, pair, tmp_path, capsys):
    gpu(False)
    assert fuse(pair, tmp_path) != 0
    assert "asked for a GPU but none is visible" in capsys.readouterr().err
    assert read_json(tmp_path / "run.json")["status"] == "failed"


def test_gpu_plugin_without_gpu_never_runs_silently_on_the_cpu(gpu, probes, pair, tmp_path):
    # As the workflow runs it (--on-error=record): either the job fails, or the run is
    # recorded as failed with the reason; it must not succeed on the CPU.
    gpu(False)
    code = fuse(pair, tmp_path, "--on-error=record")
    run = read_json(tmp_path / "run.json")
    assert code != 0 or (run["status"] == "failed" and "DeviceError" in run["error"])
    assert run["status"] != "ok"


def test_gpu_plugin_falls_back_to_cpu_only_when_allowed(gpu, probes, pair, tmp_path):
    gpu(False)
    assert fuse(pair, tmp_path, "--allow-cpu-fallback") == 0
    run = read_json(tmp_path / "run.json")
    assert run["status"] == "ok"
    assert run["extras"]["device"] == "cpu" and run["provenance"]["device"] == "cpu"


def test_gpu_plugin_is_registered_with_one_gpu(probes):
    registry.add_plugin_path(PLUGINS)
    assert registry.get_class("gpu_probe").resources.gpu == 1
    assert registry.get_class("oom_probe").resources.gpu == 0
