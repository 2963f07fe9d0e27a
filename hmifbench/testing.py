"""The conformance checks as a test helper, for the suite's and third-party test suites.

One call, failing with every problem listed::

    from hmifbench.testing import check_method

    def test_my_method():
        check_method("my_method", params={"iterations": 2})   # or check_method(MyMethod)

or one test per check, like scikit-learn's ``parametrize_with_checks``::

    from hmifbench.testing import parametrize_with_checks

    @parametrize_with_checks(["my_method"], params={"iterations": 2})
    def test_my_method(method, check):
        check(method)

The runs are shared between the parametrised tests of one method, so splitting costs nothing.
See :mod:`hmifbench.conformance` for what each check verifies; :func:`make_problem` gives
the small simulated problem the checks use, for a plugin's own tests.
"""

from __future__ import annotations

import atexit
import json
from functools import partial

from hmifbench import conformance as checks
from hmifbench.conformance import make_problem

__all__ = ["check_method", "make_problem", "parametrize_with_checks"]


def check_method(method, params: dict | None = None, *, quick: bool = True, plugins=(),
                 skip=(), device: str = "cpu") -> checks.Report:
    """Run every conformance check on ``method``; raise AssertionError listing the failures.

    Parameters
    ----------
    method : str or Method subclass
        A registered name or the class.
    params : dict, optional
        Parameter overrides (applied over the method's ``quick_params()`` when ``quick``).
    quick : bool
        Tiny problems and quick parameters (seconds), as ``hmifbench check-method``'s default.
    plugins : sequence of paths
        Plugin folders to register before looking ``method`` up.
    skip : sequence of str
        Checks to leave out (names in :data:`hmifbench.conformance.CHECKS`).
    device : str
        Passed to fit/fuse.

    Returns
    -------
    Report
        When every check passed (warnings do not fail).
    """
    report = checks.run_checks(method, params, quick=quick, plugins=plugins, skip=skip,
                               device=device)
    if not report.ok:
        raise AssertionError(f"{len(report.failures)} hmifbench check(s) failed:\n"
                             + report.format(only_failures=True))
    return report


_contexts: dict = {}


def _context(method, params, quick, plugins, device) -> checks.Context:
    cls = checks.resolve_method(method, plugins)
    key = (cls, json.dumps(params or {}, sort_keys=True, default=str), quick, device)
    if key not in _contexts:
        _contexts[key] = checks.Context(cls, params, quick=quick, device=device)
    return _contexts[key]


@atexit.register
def _close_contexts():
    for ctx in _contexts.values():
        ctx.close()
    _contexts.clear()


def _one_check(method, *, name, params, quick, plugins, device):
    result = checks.run_check(_context(method, params, quick, plugins, device), name)
    if result.failed:
        raise AssertionError(result.format())
    if result.status == "SKIP":
        import pytest

        pytest.skip(result.message)
    return result


def parametrize_with_checks(methods, params: dict | None = None, *, quick: bool = True,
                            plugins=(), skip=(), device: str = "cpu"):
    """A ``pytest.mark.parametrize`` over (method, check) pairs.

    The decorated test receives ``method`` (as given) and ``check``, a callable that runs one
    check on it and raises AssertionError with the check's message and fix when it fails.
    Test ids read ``<method>-<check>``.
    """
    import pytest

    cases = []
    for method in methods:
        label = method if isinstance(method, str) else getattr(method, "name", "") or method.__name__
        for name in checks.CHECKS:
            if name in skip:
                continue
            check = partial(_one_check, name=name, params=params, quick=quick, plugins=plugins,
                            device=device)
            cases.append(pytest.param(method, check, id=f"{label}-{name}"))
    return pytest.mark.parametrize("method, check", cases)
