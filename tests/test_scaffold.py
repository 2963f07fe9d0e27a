"""``hmifbench new-method``: the generated plugin runs as is, passes the checks, and its own
generated test file is green."""

from __future__ import annotations

import ast
import importlib.util

import pytest

from hmifbench import conformance as checks
from hmifbench import registry
from hmifbench.metrics import psnr
from hmifbench.cli import main
from hmifbench.errors import InputError
from hmifbench.scaffold import class_name, new_method


@pytest.fixture
def plugin_dir(tmp_path):
    folder = tmp_path / "plugins"
    yield folder
    if folder.resolve() in registry._extra_paths:
        registry._extra_paths.remove(folder.resolve())
    registry.refresh()


def _run_generated_test(path):
    """Import the generated test module and call its test functions, as pytest would."""
    spec = importlib.util.spec_from_file_location(f"generated_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tests = [getattr(module, n) for n in dir(module) if n.startswith("test_")]
    assert tests
    for test in tests:
        test()


def test_generated_linear_plugin_passes_its_generated_test(plugin_dir):
    made = new_method("my_fusion", plugin_dir)
    assert made.module == plugin_dir / "my_fusion.py" and made.test == plugin_dir / "test_my_fusion.py"
    source = made.module.read_text()
    ast.parse(source)
    assert "class MyFusion(Method):" in source and 'name = "my_fusion"' in source
    assert "no torch, tensorflow or jax" in source  # the import rule, stated in the template
    assert 'check_method("my_fusion", plugins=[PLUGIN_DIR])' in made.test.read_text()
    _run_generated_test(made.test)  # check_method with every check, the import one included
    cls = registry.get_class("my_fusion")
    described = cls.describe()
    assert described["family"] == "linear" and described["params"]["gain"]["doc"]


def test_generated_deep_plugin_passes_the_checks_and_imports_no_torch(plugin_dir):
    import torch

    torch.set_num_threads(1)
    made = new_method("tiny_net", plugin_dir, deep=True)
    registry.add_plugin_path(plugin_dir)
    cls = registry.get_class("tiny_net")
    assert cls.family == "deep" and cls.resources.gpu == 1
    assert cls.quick_params() == {"steps": 3, "width": 8}
    report = checks.run_checks(cls, skip=("import",))
    assert report.ok, report.format()
    footprint = checks.import_footprint([cls])[cls.__module__]
    assert footprint["heavy"] == [], footprint
    assert "import torch" in made.module.read_text()  # inside fuse(), where it belongs


def test_generated_deep_plugin_learns_something(tmp_path):
    """The deep template is a starting point, but an honest one: better than upsampling."""
    import torch

    from hmifbench.observation import upsample_bicubic

    torch.set_num_threads(1)
    made = new_method("deep_check", tmp_path, deep=True)
    module = registry._load_file(made.module.resolve())  # loaded as the registry loads plugins
    problem, reference = checks.make_problem(32, 32, 16)
    fused = module.DeepCheck().fuse(problem, seed=0, device="cpu")  # default parameters
    bicubic = upsample_bicubic(problem.lr_hsi, problem.scale, problem.offset)
    assert psnr(reference, fused.hr_hsi) > psnr(reference, bicubic) + 1.0


def test_new_method_cli_prints_how_to_enable_it(plugin_dir, capsys):
    assert main(["new-method", "cli_made", "--dir", str(plugin_dir)]) == 0
    out = capsys.readouterr().out
    assert f"plugins: [{plugin_dir}]" in out
    assert "    cli_made: {}" in out
    assert f"hmifbench check-method cli_made --plugins {plugin_dir}" in out
    # Running it again would overwrite the author's work: refused unless --force.
    assert main(["new-method", "cli_made", "--dir", str(plugin_dir)]) == 2
    assert "already exist" in capsys.readouterr().err
    assert main(["new-method", "cli_made", "--dir", str(plugin_dir), "--force"]) == 0


@pytest.mark.parametrize("name", ["My-Method", "2fast", "class", "", "a b"])
def test_bad_names_are_refused(name, plugin_dir):
    with pytest.raises(InputError, match="lower-case identifier"):
        new_method(name, plugin_dir)
    assert not plugin_dir.exists()


def test_registered_name_is_refused(plugin_dir):
    with pytest.raises(InputError, match="a method named 'gsa' is already registered"):
        new_method("gsa", plugin_dir)


def test_class_name():
    assert class_name("my_fusion_v2") == "MyFusionV2"
    assert class_name("hysure") == "Hysure"
