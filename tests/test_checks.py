"""The conformance checks: broken methods fail with messages that say what to fix, correct
ones pass, and every registered built-in passes them (hmifbench check-method)."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from importlib.metadata import entry_points

import numpy as np
import pytest

from hmifbench import conformance as checks
from hmifbench import registry
from hmifbench.cli import main
from hmifbench.errors import InputError
from hmifbench.methods import Fused, Method, Resources, param
from hmifbench.testing import check_method, parametrize_with_checks

FAST = ("import",)  # a subprocess per method; covered once below for all built-ins


# ----------------------------------------------------------------------------- test methods


class Good(Method):
    """Bicubic upsampling with a gain (a correct method, used as the control)."""

    name = "good"
    blind = True
    citation = "R. Keys, IEEE Trans. ASSP 29(6):1153-1160, 1981"
    licence = "BSD-3-Clause"

    @dataclass
    class Params:
        gain: float = param(1.0, "multiplies the output")

    def fuse(self, problem, *, state=None, seed=0, device="auto", progress=None):
        from hmifbench.observation import upsample_bicubic

        return Fused(self.params.gain * upsample_bicubic(problem.lr_hsi, problem.scale, problem.offset))


class GoodKnown(Good):
    """Needs the PSF and SRF and refuses a problem without them (correct non-blind method)."""

    name = "good_known"
    blind = False
    needs_psf = True
    needs_srf = True

    def fuse(self, problem, **kw):
        self.check_problem(problem)
        return super().fuse(problem, **kw)


class WrongShape(Good):
    """Drops the last row."""

    name = "wrong_shape"

    def fuse(self, problem, **kw):
        return Fused(super().fuse(problem, **kw).hr_hsi[:-1])


class Nondeterministic(Good):
    """Adds noise from the global random state."""

    name = "nondeterministic"

    def fuse(self, problem, **kw):
        x = super().fuse(problem, **kw).hr_hsi
        return Fused(x + 1e-3 * np.random.standard_normal(x.shape))


class NaNOutput(Good):
    """Divides by zero somewhere."""

    name = "nan_output"

    def fuse(self, problem, **kw):
        x = super().fuse(problem, **kw).hr_hsi
        x[0, 0, 0] = np.nan
        return Fused(x)


class IgnoresBlind(Good):
    """Declares it needs the PSF and SRF but runs without them."""

    name = "ignores_blind"
    blind = False
    needs_psf = True
    needs_srf = True


class RefusesWithWrongError(Good):
    """Refuses a missing PSF with a KeyError instead of InputError."""

    name = "wrong_error"
    blind = False
    needs_psf = True

    def fuse(self, problem, **kw):
        if problem.psf is None:
            raise KeyError("psf")
        return super().fuse(problem, **kw)


class FalselyBlind(Good):
    """Declares blind but reads the PSF."""

    name = "falsely_blind"

    def fuse(self, problem, **kw):
        k = problem.psf.shape[0]  # AttributeError when psf is None
        return Fused(super().fuse(problem, **kw).hr_hsi + 0 * k)


class ModifiesInput(Good):
    """Normalises the LR-HSI in place."""

    name = "modifies_input"

    def fuse(self, problem, **kw):
        problem.lr_hsi *= 0.5
        return Fused(2 * super().fuse(problem, **kw).hr_hsi)


class SwallowsParams(Good):
    """Overrides __init__ and accepts anything."""

    name = "swallows_params"

    def __init__(self, **params):
        self.params = self.Params()


class BadMetadata(Good):
    name = "Bad-Name"
    citation = ""
    resources = Resources(gpu=2, mem_mb=0)

    @dataclass
    class Params:
        gain: float = 1.0  # no doc


class UnstorableExtras(Good):
    """Puts an object JSON cannot hold into the extras."""

    name = "unstorable_extras"

    def fuse(self, problem, **kw):
        return Fused(super().fuse(problem, **kw).hr_hsi, extras={"solver": object()})


class Trained(Good):
    """Learns a gain on the train pairs (a correct dataset-trained method)."""

    name = "trained"
    training = "dataset"

    def fit(self, pairs, *, seed=0, device="auto", progress=None, workdir=None):
        return {"gain": float(np.mean([q.lr_hsi.mean() for q in pairs]) > 0)}

    def fuse(self, problem, *, state=None, **kw):
        if state is None:
            raise InputError("trained needs the state returned by fit()")
        return Fused(state["gain"] * super().fuse(problem, **kw).hr_hsi)


class FitWithoutWorkdir(Trained):
    """fit() without the workdir argument the workflow passes."""

    name = "fit_without_workdir"

    def fit(self, pairs, *, seed=0, device="auto", progress=None):
        return {"gain": 1.0}


class StateNotJSON(Trained):
    """Returns a model object as the state."""

    name = "state_not_json"

    def fit(self, pairs, **kw):
        return {"gain": 1.0, "model": object()}


def _statuses(report):
    return {r.name: r.status for r in report.results}


def _failed(report):
    return {r.name: r for r in report.results if r.failed}


# ----------------------------------------------------------------------------- correct methods


@pytest.mark.parametrize("cls", [Good, GoodKnown, Trained])
def test_correct_methods_pass_every_check(cls):
    report = check_method(cls, skip=FAST)
    assert report.ok
    statuses = _statuses(report)
    assert all(statuses[n] == "PASS" for n in ("metadata", "params", "resources", "output",
                                               "determinism", "inputs", "odd-sizes", "settings",
                                               "cpu", "result"))


@parametrize_with_checks([Good], skip=FAST)
def test_parametrize_with_checks_runs_each_check(method, check):
    check(method)


def test_parametrize_with_checks_names_cases_and_fails_with_the_fix():
    mark = parametrize_with_checks([WrongShape], skip=FAST)
    ids = [p.id for p in mark.args[1]]
    assert ids[0] == "wrong_shape-metadata" and "wrong_shape-output" in ids
    output = next(p for p in mark.args[1] if p.id == "wrong_shape-output")
    method, check = output.values
    with pytest.raises(AssertionError, match=r"FAIL  output .*shape \(31, 32, 16\).*\n.*fix: return"):
        check(method)


# ----------------------------------------------------------------------------- broken methods


@pytest.mark.parametrize("cls, check, message, fix", [
    (WrongShape, "output", r"shape \(31, 32, 16\), expected \(32, 32, 16\)", "(H, W, B)"),
    (Nondeterministic, "determinism", "two runs with seed=0 differ", "draw every random number from the seed"),
    (NaNOutput, "output", "1 NaN or infinite value", "guard divisions"),
    (IgnoresBlind, "settings", "ran without the psf although it declares blind=False", "self.check_problem(problem)"),
    (RefusesWithWrongError, "settings", "raised KeyError instead of InputError", "self.check_problem(problem)"),
    (FalselyBlind, "settings", "declares blind=True but fails with psf=None", "estimate the PSF/SRF"),
    (ModifiesInput, "inputs", "modified problem.lr_hsi in place", "work on a copy"),
    (SwallowsParams, "params", "an unknown parameter was accepted silently", "super()"),
    (UnstorableExtras, "result", "extras cannot be written to JSON", "store its path"),
    (FitWithoutWorkdir, "output", "unexpected keyword argument 'workdir'", "fit() must accept workdir=None"),
    (StateNotJSON, "result", "the state returned by fit\\(\\) cannot be written to JSON", "store its path"),
])
def test_broken_methods_fail_the_right_check_with_a_fix(cls, check, message, fix):
    report = checks.run_checks(cls, skip=FAST)
    failed = _failed(report)
    assert check in failed, report.format()
    assert re.search(message, failed[check].message), failed[check].format()
    assert fix in failed[check].fix
    # Checks unrelated to the defect still pass (the report points at the right place).
    assert _statuses(report)["metadata"] == "PASS"
    with pytest.raises(AssertionError, match=f"FAIL  {check}"):
        check_method(cls, skip=FAST)


def test_a_wrong_output_is_counted_once_and_blocks_dependent_checks():
    report = checks.run_checks(WrongShape, skip=FAST)
    assert set(_failed(report)) == {"output", "odd-sizes"}
    statuses = _statuses(report)
    assert all(statuses[n] == "SKIP" for n in ("determinism", "settings", "result", "accuracy"))
    assert "the output check fails" in next(r for r in report.results if r.name == "result").message
    # The odd-size failure is the same defect: no misleading hint about square images.
    assert "square" not in _failed(report)["odd-sizes"].fix


def test_odd_size_only_defect_gets_the_size_hint():
    class SquareOnly(Good):
        """Breaks on non-square images."""
        name = "square_only"

        def fuse(self, problem, **kw):
            x = super().fuse(problem, **kw).hr_hsi
            side = min(x.shape[:2])
            return Fused(x[:side, :side])

    failed = _failed(checks.run_checks(SquareOnly, skip=FAST))
    assert set(failed) == {"odd-sizes"}
    assert "expected (24, 40, 7)" in failed["odd-sizes"].message
    assert "don't assume square images" in failed["odd-sizes"].fix


def test_nondeterministic_crash_on_second_run_is_a_determinism_failure():
    class Stateful(Good):
        """Works once per process."""
        name = "stateful"
        used = []

        def fuse(self, problem, **kw):
            if self.used:
                raise RuntimeError("already used")
            self.used.append(1)
            return super().fuse(problem, **kw)

    failed = _failed(checks.run_checks(Stateful, only=("output", "determinism")))
    assert set(failed) == {"determinism"}
    assert "a second one did not" in failed["determinism"].message


def test_bad_metadata_and_resources_are_reported_together():
    report = checks.run_checks(BadMetadata, only=("metadata", "resources"))
    failed = _failed(report)
    meta, res = failed["metadata"].message, failed["resources"].message
    assert "name 'Bad-Name' is not a lower-case identifier" in meta
    assert "citation is empty" in meta
    assert "parameter 'gain' has no doc" in meta
    assert "param(default, 'what it does')" in failed["metadata"].fix
    assert "gpu=2" in res and "mem_mb=0" in res


def test_metadata_flags_contradictory_blind_declarations():
    class BlindNeedsPsf(Good):
        """Contradiction."""
        name = "blind_needs_psf"
        needs_psf = True

    class NotBlindNeedsNothing(Good):
        """Contradiction."""
        name = "not_blind_needs_nothing"
        blind = False

    for cls, text in ((BlindNeedsPsf, "blind = True but needs_psf/needs_srf is set"),
                      (NotBlindNeedsNothing, "needs neither the PSF nor the SRF")):
        result = checks.run_checks(cls, only=("metadata",)).results[0]
        assert result.failed and text in result.message


def test_resources_warn_when_family_and_gpu_disagree():
    class DeepNoGpu(Good):
        """A network without a GPU request."""
        name = "deep_no_gpu"
        family = "deep"

    result = checks.run_checks(DeepNoGpu, only=("resources",)).results[0]
    assert result.status == "WARN" and "asks for no GPU" in result.message


def test_heavy_import_at_module_level_fails_the_import_check(tmp_path, monkeypatch):
    # sqlite3 stands in for torch (same mechanism, without paying torch's import in a test).
    monkeypatch.setattr(checks.static, "HEAVY_MODULES", checks.HEAVY_MODULES + ("sqlite3",))
    (tmp_path / "heavy_method.py").write_text(textwrap.dedent('''
        import sqlite3  # a heavy import at module level: what the check must catch
        from hmifbench.methods import Fused, Method

        class Heavy(Method):
            """Imports at module level."""
            name = "test_heavy"
            blind = True

            def fuse(self, problem, **kw):
                raise NotImplementedError
    '''))
    (tmp_path / "light_method.py").write_text(textwrap.dedent('''
        from hmifbench.methods import Fused, Method

        class Light(Method):
            """Imports inside fuse."""
            name = "test_light"
            blind = True

            def fuse(self, problem, **kw):
                import sqlite3
                raise NotImplementedError
    '''))
    registry.add_plugin_path(tmp_path)
    try:
        classes = [registry.get_class("test_light"), registry.get_class("test_heavy")]
    finally:
        registry._extra_paths.remove(tmp_path.resolve())
        registry.refresh()
    footprint = checks.import_footprint(classes)  # one interpreter: the light module first
    light, heavy = (checks.static._import_result(c, footprint[c.__module__]) for c in classes)
    assert heavy.failed and "imports sqlite3" in heavy.message
    assert "move 'import sqlite3'" in heavy.fix and "inside fit()/fuse()" in heavy.fix
    assert light.status == "PASS", light.format()


def test_unknown_check_name_is_an_input_error():
    with pytest.raises(InputError, match="unknown check"):
        checks.run_checks(Good, skip=("determinsm",))


# ----------------------------------------------------------------------------- CLI


def test_check_method_cli_exit_status_and_report(tmp_path, capsys):
    (tmp_path / "shape_plugin.py").write_text(textwrap.dedent('''
        from hmifbench.methods import Fused, Method

        class Shape(Method):
            """Returns the LR-HSI unchanged."""
            name = "test_cli_shape"
            blind = True
            citation = "none"
            licence = "none"

            def fuse(self, problem, **kw):
                return Fused(problem.lr_hsi)
    '''))
    try:
        rc_bad = main(["check-method", "test_cli_shape", "--plugins", str(tmp_path), "--skip", "import"])
        bad = capsys.readouterr().out
        rc_good = main(["check-method", "upsample", "--skip", "import", "--params", "{}"])
        good = capsys.readouterr().out
        rc_param = main(["check-method", "gsa", "--params", '{"ridg": 1}', "--skip", "import"])
        param_err = capsys.readouterr().err
    finally:
        registry._extra_paths.remove(tmp_path.resolve())
        registry.refresh()
    assert rc_bad == 1 and rc_good == 0 and rc_param == 2
    assert "FAIL  output       the method returned shape (8, 8, 16), expected (32, 32, 16)" in bad
    assert "fix: return an (H, W, B) array" in bad
    assert "failed" in bad.splitlines()[-1]
    assert good.splitlines()[-1].startswith("10 passed, 0 failed")
    assert "PASS  determinism" in good
    assert "check-method: error: the parameters to check are refused: method 'gsa' has no " \
           "parameter 'ridg'" in param_err


# ----------------------------------------------------------------------------- built-ins

# Quick parameters for built-ins that do not declare quick_params() yet (only used when the
# method's own quick_params() is empty); each keeps a check run within a few seconds.
QUICK_FALLBACK = {
    "ltmr": {"iterations": 5, "kmeans_iterations": 5},
    "mossfuse": {"iterations": 2, "width": 8, "heads": 1, "patch_size": 16, "patch_stride": 16,
                 "batch_size": 1},
}
# Known failures of built-ins, reported to their authors: method -> {check: why}. Only these
# checks may fail (the test then reports xfail); any other failure fails the test.
KNOWN_FAILURES: dict[str, dict[str, str]] = {}


def _builtin_entry_points():
    return sorted((ep for ep in entry_points(group=registry.GROUP)
                   if ep.dist is not None and ep.dist.name == "hmifbench"), key=lambda ep: ep.name)


def _builtin_class(ep):
    """The class, or a skip when its module has not landed in this checkout yet."""
    module = ep.value.split(":")[0]
    try:
        return ep.load()
    except ModuleNotFoundError as err:
        if err.name == module:
            pytest.skip(f"{ep.name}: {module} is not in this checkout yet")
        raise


@pytest.mark.parametrize("ep", _builtin_entry_points(), ids=lambda ep: ep.name)
def test_builtin_passes_the_checks(ep):
    import torch

    torch.set_num_threads(1)
    cls = _builtin_class(ep)
    params = {} if cls.quick_params() else QUICK_FALLBACK.get(ep.name, {})
    report = checks.run_checks(cls, params, skip=FAST)
    failed = {r.name for r in report.failures}
    known = KNOWN_FAILURES.get(ep.name, {})
    assert failed <= set(known), report.format(only_failures=True)
    if failed:
        pytest.xfail("; ".join(f"{c}: {known[c]}" for c in sorted(failed)))


def test_builtin_modules_import_nothing_heavy():
    classes = []
    for ep in _builtin_entry_points():
        try:
            classes.append(ep.load())
        except ModuleNotFoundError:
            continue  # not landed yet; the per-method test says so
    footprint = checks.import_footprint(classes)
    heavy = {m: f for m, f in footprint.items() if f.get("heavy") or f.get("error")}
    assert len(footprint) == len({c.__module__ for c in classes})
    assert not heavy, heavy


def test_checks_leave_the_callers_global_random_state_alone():
    np.random.seed(5)
    expected = np.random.rand()
    np.random.seed(5)
    checks.run_checks(Nondeterministic, only=("output", "determinism"))
    assert np.random.rand() == expected
