"""Method discovery: entry points, plugin folders, parameters, import lightness."""

import subprocess
import sys
import textwrap

import pytest

from hmifbench import registry
from hmifbench.errors import InputError, MethodNotFound
from hmifbench.methods import get

PLUGIN = textwrap.dedent('''
    from dataclasses import dataclass
    from hmifbench.methods import Fused, Method, param

    class Mean(Method):
        """Every HR pixel gets the LR-HSI's mean spectrum (a plugin used by the tests)."""
        name = "test_mean"
        family = "linear"
        blind = True

        @dataclass
        class Params:
            gain: float = param(1.0, "multiplies the output")

        def fuse(self, problem, *, state=None, seed=0, device="auto", progress=None):
            import numpy as np
            h, w = problem.hr_msi.shape[:2]
            m = problem.lr_hsi.mean(axis=(0, 1)) * self.params.gain
            return Fused(np.broadcast_to(m, (h, w, m.size)).copy())
''')


@pytest.fixture
def plugin_dir(tmp_path):
    (tmp_path / "mean_method.py").write_text(PLUGIN)
    (tmp_path / "broken.py").write_text("import no_such_module_xyz\n")
    registry.add_plugin_path(tmp_path)
    yield tmp_path
    registry._extra_paths.remove(tmp_path.resolve())
    registry.refresh()


def test_builtins_are_registered_through_entry_points():
    assert {"upsample", "gsa"} <= set(registry.available())


def test_plugin_folder_is_discovered_and_broken_plugin_reported(plugin_dir):
    assert "test_mean" in registry.available()
    m = get("test_mean", gain=2)
    assert m.params.gain == 2.0
    errors = registry.load_errors()
    assert any("broken.py" in k and "no_such_module_xyz" in v for k, v in errors.items())


def test_unknown_method_and_bad_parameters_are_clear_errors():
    with pytest.raises(MethodNotFound, match="no method named 'nope'"):
        get("nope")
    with pytest.raises(InputError, match="has no parameter 'ridg'"):
        get("gsa", ridg=1)
    with pytest.raises(InputError, match="'ridge' must be a number"):
        get("gsa", ridge="big")


def test_describe_is_plain_data():
    d = registry.get_class("gsa").describe()
    assert d["name"] == "gsa" and d["family"] == "linear"
    assert d["params"]["ridge"]["default"] == 1e-6
    assert set(d["resources"]) == {"gpu", "mem_mb", "runtime_min", "threads", "train_runtime_min"}


def test_listing_methods_does_not_import_torch():
    code = ("import sys; from hmifbench import registry; "
            "[registry.get_class(n).describe() for n in registry.available()]; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_listing_describing_and_configuring_every_method_imports_no_torch():
    """Building the workflow's DAG lists, describes and configures methods: none of that may
    load torch (the deep methods import it inside fit/fuse only). One fresh interpreter for
    every registered method; check-method also inspects each module statically."""
    code = textwrap.dedent("""
        import sys, hmifbench.methods as m
        names = m.available()
        for name in names:
            m.get_class(name).describe()
            m.get(name)
        assert {"cucanet", "daem", "gdd", "miae", "mossfuse", "udaln"} <= set(names), names
        assert "torch" not in sys.modules, "torch imported"
    """)
    subprocess.run([sys.executable, "-c", code], check=True)
