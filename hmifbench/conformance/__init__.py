"""Conformance checks that every fusion method passes, built-in or plugin.

``hmifbench check-method NAME`` prints one line per check; :func:`hmifbench.testing.check_method`
runs the same checks from a test suite. Each check runs the method on tiny simulated problems
(made with the suite's own degradation protocol ``gauss-fwhm-x4``), so the whole set takes
seconds with the method's :meth:`~hmifbench.method.Method.quick_params`.

The checks
----------
metadata      name is a lower-case identifier; family, training, blind/needs_* consistent;
              citation and licence given; every parameter typed, documented, with a default
              that is valid through the config (JSON/YAML value).
import        importing the method's module imports no torch/tensorflow/jax (heavy imports
              belong inside ``fit``/``fuse``), so listing methods and building the DAG stay light.
params        defaults and quick parameters are valid; an unknown parameter and a value of the
              wrong type are refused with an InputError naming the parameter.
resources     gpu in {0, 1}; mem_mb, runtime_min, threads positive and plausible.
output        ``fuse`` on a 32×32, 16-band problem (scale 4, 3 MSI bands) with ``device="cpu"``
              returns a ``Fused`` whose ``hr_hsi`` is (H, W, B) float32 and finite.
determinism   the same seed gives a bit-identical output from a fresh instance, even when the
              global NumPy/Python/torch random states differ.
inputs        ``fuse`` does not modify the arrays of the problem it is given.
odd-sizes     a 24×40 HR image at scale 4 with 7 HSI and 3 MSI bands.
settings      blind methods run with ``psf=None, srf=None``; non-blind ones refuse a missing
              PSF/SRF they need with an InputError that names it.
cpu           the runs above used ``device="cpu"`` and left CUDA untouched.
result        ``Fused`` fields are what the workflow can store: n_params ≥ 0, psf (k, k) and srf
              (b, B) when returned, extras (and a trained state) JSON-serialisable.
accuracy      (information) PSNR against the reference and against bicubic upsampling; a
              warning, not a failure, when the method is far below upsampling.
time          (information) seconds per run.

Layout: :mod:`.problems` (the test problems), :mod:`.context` (results, report, the run
context that caches runs across checks), :mod:`.static` and :mod:`.runtime` (the checks),
:mod:`.runner` (their order and :func:`run_checks`).
"""

from hmifbench.method import NAME_PATTERN

from .context import CheckResult, Context, Report
from .problems import PROBLEMS, PROTOCOL, make_problem
from .runner import CHECKS, resolve_method, run_check, run_checks
from .static import HEAVY_MODULES, import_footprint

__all__ = ["CHECKS", "HEAVY_MODULES", "NAME_PATTERN", "PROBLEMS", "PROTOCOL", "CheckResult",
           "Context", "Report", "import_footprint", "make_problem", "resolve_method",
           "run_check", "run_checks"]
