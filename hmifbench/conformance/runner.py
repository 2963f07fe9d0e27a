"""The driver: the ordered table of checks and :func:`run_checks`."""

from __future__ import annotations

import contextlib
import time


from hmifbench.errors import InputError

from .context import CheckResult, Context, Report, _where
from .runtime import (check_accuracy, check_cpu, check_determinism, check_inputs, check_odd_sizes,
                      check_output, check_result, check_settings, check_time)
from .static import check_import, check_metadata, check_params, check_resources


#: name → check function, in report order.
CHECKS = {
    "metadata": check_metadata,
    "import": check_import,
    "params": check_params,
    "resources": check_resources,
    "output": check_output,
    "determinism": check_determinism,
    "inputs": check_inputs,
    "odd-sizes": check_odd_sizes,
    "settings": check_settings,
    "cpu": check_cpu,
    "result": check_result,
    "accuracy": check_accuracy,
    "time": check_time,
}
#: checks that need a working constructor (skipped when the parameters are refused)
_NEEDS_INSTANCE = ("output", "determinism", "inputs", "odd-sizes", "settings", "cpu", "result",
                   "accuracy")


def run_check(ctx: Context, name: str) -> CheckResult:
    """Run one check, turning an unexpected crash of the check itself into a FAIL line."""
    try:
        return CHECKS[name](ctx)
    except Exception as err:
        return CheckResult(name, "FAIL", f"the check crashed: {type(err).__name__}: {err}{_where(err)}",
                           "see the message; the method probably breaks a contract this check assumes")


def resolve_method(method, plugins=()):
    """A Method class from a registered name or a class."""
    from hmifbench import registry
    from hmifbench.method import Method

    for p in plugins:
        registry.add_plugin_path(p)
    if isinstance(method, type) and issubclass(method, Method):
        return method
    if isinstance(method, str):
        return registry.get_class(method)
    raise InputError(f"expected a method name or a Method subclass, got {method!r}")


def run_checks(method, params: dict | None = None, *, quick: bool = True, plugins=(),
               skip=(), only=None, device: str = "cpu") -> Report:
    """Run the conformance checks on one method.

    Parameters
    ----------
    method : str or Method subclass
        A registered name (plugins included) or the class itself.
    params : dict, optional
        Parameter overrides, applied over ``quick_params()`` when ``quick``.
    quick : bool
        Use the method's quick parameters and the 32×32 problem (else defaults and 64×64).
    plugins : sequence of paths
        Plugin folders to register first.
    skip, only : sequences of check names
        Leave out these checks / run only these (see :data:`CHECKS`).
    device : str
        Device passed to fit/fuse (the checks are meant for ``"cpu"``).

    Returns
    -------
    Report
    """
    cls = resolve_method(method, plugins)
    unknown = sorted((set(skip) | set(only or ())) - set(CHECKS))
    if unknown:
        raise InputError(f"unknown check(s) {unknown}; checks: {list(CHECKS)}")
    t0 = time.perf_counter()
    ctx = Context(cls, params, quick=quick, device=device)
    if params:  # the caller's mistake is an error; a bad quick_params() is the method's (a FAIL)
        try:
            cls.make_params(**ctx.params)
        except InputError as err:
            ctx.close()
            raise InputError(f"the parameters to check are refused: {err}") from None
    report = Report(ctx.name, f"{cls.__module__}:{cls.__qualname__}", ctx.params, quick)
    try:
        with _quiet():
            for name in CHECKS:
                if name in skip or (only is not None and name not in only):
                    continue
                report.results.append(run_check(ctx, name))
    finally:
        ctx.close()
    report.seconds = time.perf_counter() - t0
    return report


@contextlib.contextmanager
def _quiet():
    """Keep progress bars and warnings of the method out of the report."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
