"""Conformance checks that every fusion method passes, built-in or plugin.

``hmifbench check-method NAME`` prints one line per check; :func:`hmifbench.testing.check_method`
runs the same checks from a test suite. Each check runs the method on tiny simulated problems
(made with the suite's own degradation protocol ``gauss-fwhm-x4``), so the whole set takes
seconds with the method's :meth:`~hmifbench.methods.base.Method.quick_params`.

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
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import traceback
import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hmifbench.errors import HmifError, InputError

#: Top-level packages a method module must not import at module level.
HEAVY_MODULES = ("torch", "torchvision", "tensorflow", "jax", "jaxlib", "cupy", "keras",
                 "paddle", "mxnet", "tinygrad")

#: Plausibility limits of resource hints (a single job on one cluster node).
MAX_MEM_MB = 1_000_000          # 1 TB
MAX_RUNTIME_MIN = 7 * 24 * 60   # a week
MAX_THREADS = 256

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

#: (rows, cols, HSI bands) of the problems; scale 4, 3 MSI bands (Nikon D700 SRF).
PROBLEMS = {
    "standard": {True: (32, 32, 16), False: (64, 64, 31)},  # keyed by quick
    "odd": {True: (24, 40, 7), False: (24, 40, 7)},
}
PROTOCOL = "gauss-fwhm-x4"
TRAIN_SEEDS = (101, 102)


@dataclass
class CheckResult:
    """The outcome of one check.

    status : ``"PASS"``, ``"FAIL"``, ``"WARN"`` (worth a look, not a failure), ``"INFO"`` or
    ``"SKIP"``; message : what was found; fix : what to change (failures and warnings).
    """

    name: str
    status: str
    message: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"

    def format(self) -> str:
        line = f"{self.status:<5} {self.name:<12} {self.message}"
        if self.fix:
            line += f"\n{'':<19}fix: {self.fix}"
        return line


@dataclass
class Report:
    """All check results of one method."""

    method: str
    source: str
    params: dict
    quick: bool
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.failed]

    def format(self, only_failures: bool = False) -> str:
        head = (f"check-method {self.method} ({self.source}); params {json.dumps(self.params)}"
                f"{'; quick' if self.quick else ''}")
        shown = self.failures if only_failures else self.results
        counts = {s: sum(r.status == s for r in self.results) for s in ("PASS", "FAIL", "WARN", "SKIP")}
        skipped = f", {counts['SKIP']} not judged" if counts["SKIP"] else ""
        tail = (f"{counts['PASS']} passed, {counts['FAIL']} failed, {counts['WARN']} warnings"
                f"{skipped} in {self.seconds:.1f} s")
        return "\n".join([head, *(r.format() for r in shown), tail])


# ---------------------------------------------------------------------------- problems


def make_problem(rows: int, cols: int, bands: int, *, scene_seed: int = 0, setting: str = "known"):
    """A small simulated problem and its reference, made with the suite's own pipeline.

    A synthetic scene (:func:`hmifbench.datasets.synthetic.make_scene`, bands evenly spaced over
    400–700 nm) is cropped to ``rows × cols`` and degraded with protocol ``gauss-fwhm-x4``.

    Returns
    -------
    problem : FusionProblem
        With the true PSF and SRF when ``setting="known"``, without them when ``"blind"``.
    reference : ndarray (rows, cols, bands)
    """
    from hmifbench.cube import Cube
    from hmifbench.datasets.protocols import degrade
    from hmifbench.datasets.synthetic import make_scene
    from hmifbench.methods.base import FusionProblem

    wavelengths = np.linspace(400.0, 700.0, bands)
    scene = make_scene(seed=scene_seed, size=max(rows, cols, 8), wavelengths=wavelengths)
    truth = np.ascontiguousarray(scene.data[:rows, :cols])
    pair = degrade(Cube(truth, wavelengths), PROTOCOL)
    t = pair.truth
    known = setting == "known"
    problem = FusionProblem(pair.lr_hsi, pair.hr_msi, t["scale"], wavelengths=wavelengths,
                            psf=t["psf"] if known else None, srf=t["srf"] if known else None,
                            offset=t["offset"], border=t["border"])
    return problem, truth


def _copy_problem(problem, **changes):
    """A copy whose arrays the method may not share with anything we compare against."""
    return dataclasses.replace(problem, lr_hsi=problem.lr_hsi.copy(), hr_msi=problem.hr_msi.copy(),
                               **changes)


# ---------------------------------------------------------------------------- runs


@dataclass
class Run:
    """One fit (when the method trains on a dataset) and fuse."""

    result: object = None
    error: BaseException | None = None
    where: str = ""
    state: object = None
    fit_s: float = 0.0
    fuse_s: float = 0.0
    inputs_changed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe_error(self) -> str:
        return f"{type(self.error).__name__}: {self.error}{self.where}"


def _where(err: BaseException) -> str:
    """' (at file:line in function)' of the innermost frame outside hmifbench's checks."""
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if not f.filename.endswith(("checks.py", "testing.py"))]
    if not frames:
        return ""
    f = frames[-1]
    return f" (at {Path(f.filename).name}:{f.lineno} in {f.name})"


@contextlib.contextmanager
def _scrambled_global_rngs(salt: int):
    """Give the global random states run-specific values, so that a method drawing from them
    without seeding them gives different outputs in two runs (which the checks detect); the
    caller's states are restored afterwards."""
    saved_np, saved_py = np.random.get_state(), random.getstate()
    torch = sys.modules.get("torch")
    saved_torch = torch.get_rng_state() if torch is not None else None
    np.random.seed(9000 + salt)
    random.seed(9000 + salt)
    if torch is not None:
        torch.manual_seed(9000 + salt)
    try:
        yield
    finally:
        np.random.set_state(saved_np)
        random.setstate(saved_py)
        if saved_torch is not None:
            torch.set_rng_state(saved_torch)


def _cuda_initialized() -> bool:
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_initialized())
    except Exception:
        return False


class Context:
    """A method class with its parameters, and the runs the checks share (each done once)."""

    def __init__(self, cls, params: dict | None = None, *, quick: bool = True, device: str = "cpu"):
        self.cls = cls
        self.quick = quick
        self.device = device
        base = dict(cls.quick_params()) if quick else {}
        self.params = {**base, **(params or {})}
        self._runs: dict = {}
        self._problems: dict = {}
        self._train: dict = {}
        self.cuda_before = _cuda_initialized()
        self._tmp = tempfile.TemporaryDirectory(prefix="hmifbench-check-")

    @property
    def name(self) -> str:
        return self.cls.name or self.cls.__name__

    def problem(self, key: str, setting: str = "known"):
        if (key, setting) not in self._problems:
            rows, cols, bands = PROBLEMS[key][self.quick]
            self._problems[key, setting] = make_problem(rows, cols, bands, setting=setting)
        return self._problems[key, setting]

    def train_problems(self, key: str, setting: str):
        if (key, setting) not in self._train:
            rows, cols, bands = PROBLEMS[key][self.quick]
            self._train[key, setting] = [make_problem(rows, cols, bands, scene_seed=s,
                                                      setting=setting)[0] for s in TRAIN_SEEDS]
        return self._train[key, setting]

    def trains(self) -> bool:
        try:
            return bool(self.cls.trains_on_dataset(self.cls.make_params(**self.params)))
        except Exception:
            return self.cls.training == "dataset"

    def run(self, key: str = "standard", setting: str = "known", seed: int = 0,
            repeat: int = 0) -> Run:
        """Fit (if needed) and fuse once; memoised by its arguments."""
        k = (key, setting, seed, repeat)
        if k not in self._runs:
            self._runs[k] = self._run(key, setting, seed, repeat)
        return self._runs[k]

    def _run(self, key, setting, seed, repeat) -> Run:
        problem, _ = self.problem(key, setting)
        given = _copy_problem(problem)
        run = Run()
        try:
            with _scrambled_global_rngs(repeat):
                self._fit_and_fuse(run, given, key, setting, seed, repeat)
        except Exception as err:
            run.error, run.where = err, _where(err)
        run.inputs_changed = [n for n in ("lr_hsi", "hr_msi")
                              if not np.array_equal(getattr(given, n), getattr(problem, n))]
        return run

    def _fit_and_fuse(self, run: Run, given, key, setting, seed, repeat) -> None:
        method = self.cls(**self.params)
        if self.trains():
            pairs = [_copy_problem(q) for q in self.train_problems(key, setting)]
            workdir = Path(self._tmp.name) / f"fit-{key}-{setting}-{seed}-{repeat}"
            workdir.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            run.state = method.fit(pairs, seed=seed, device=self.device, workdir=workdir)
            run.fit_s = time.perf_counter() - t0
        method.check_problem(given)  # as the workflow does before fuse
        t0 = time.perf_counter()
        run.result = method.fuse(given, state=run.state, seed=seed, device=self.device)
        run.fuse_s = time.perf_counter() - t0

    def close(self) -> None:
        self._tmp.cleanup()


# ---------------------------------------------------------------------------- checks


def _param_fields(cls):
    return dataclasses.fields(cls.Params) if dataclasses.is_dataclass(cls.Params) else ()


def check_metadata(ctx: Context) -> CheckResult:
    """Name, family, training, blind/needs_*, citation, licence, documented typed parameters."""
    cls, problems = ctx.cls, []
    if not isinstance(cls.name, str) or not NAME_PATTERN.match(cls.name):
        problems.append((f"name {cls.name!r} is not a lower-case identifier",
                         "set name = 'my_method' (letters, digits, underscores; starts with a letter)"))
    if cls.family not in ("linear", "deep"):
        problems.append((f"family {cls.family!r}", "set family = 'linear' or 'deep'"))
    if cls.training not in ("none", "dataset"):
        problems.append((f"training {cls.training!r}", "set training = 'none' or 'dataset'"))
    if not isinstance(cls.blind, bool):
        problems.append((f"blind {cls.blind!r} is not a bool", "set blind = True or False"))
    elif cls.blind and (cls.needs_psf or cls.needs_srf):
        problems.append(("blind = True but needs_psf/needs_srf is set",
                         "a blind method needs neither: set needs_psf = needs_srf = False"))
    elif not cls.blind and not (cls.needs_psf or cls.needs_srf):
        problems.append(("blind = False but the method needs neither the PSF nor the SRF",
                         "declare blind = True, or set needs_psf/needs_srf to what fuse() uses"))
    for attr in ("citation", "licence"):
        if not str(getattr(cls, attr, "") or "").strip():
            problems.append((f"{attr} is empty", f"set {attr} = '...' (where the method comes "
                                                 "from / the terms its code is under)"))
    if not (cls.__doc__ or "").strip():
        problems.append(("the class has no docstring",
                         "document the algorithm and its reference (numpydoc)"))
    problems += _params_metadata_problems(cls)
    try:
        json.dumps(cls.describe())
    except Exception as err:
        problems.append((f"describe() is not plain JSON data ({err})",
                         "give parameters JSON-compatible defaults (numbers, strings, lists)"))
    if problems:
        return CheckResult("metadata", "FAIL", "; ".join(p for p, _ in problems),
                           "; ".join(dict.fromkeys(f for _, f in problems)))
    n = len(_param_fields(cls))
    return CheckResult("metadata", "PASS", f"name {cls.name!r}, family {cls.family}, training "
                       f"{cls.training}, blind {cls.blind}, {n} documented parameter(s)")


def _params_metadata_problems(cls) -> list[tuple[str, str]]:
    if not dataclasses.is_dataclass(cls.Params):
        return [("Params is not a dataclass", "decorate the nested class Params with @dataclass")]
    try:
        hints = typing.get_type_hints(cls.Params)
    except Exception as err:
        return [(f"Params type hints cannot be resolved ({err})",
                 "use types importable in the method's module (int, float, str, bool, Literal, ...)")]
    problems = []
    for f in dataclasses.fields(cls.Params):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            problems.append((f"parameter {f.name!r} has no default",
                             f"give it one: {f.name}: T = param(default, 'what it does')"))
        if hints.get(f.name, typing.Any) is typing.Any:
            problems.append((f"parameter {f.name!r} has no type",
                             f"annotate it: {f.name}: int | float | str | bool | Literal[...]"))
        if not str(f.metadata.get("doc", "")).strip():
            problems.append((f"parameter {f.name!r} has no doc",
                             f"declare it as {f.name}: T = param(default, 'what it does')"))
    return problems


def check_import(ctx: Context) -> CheckResult:
    """Importing the method's module in a fresh interpreter imports nothing heavy."""
    found = import_footprint([ctx.cls])
    return _import_result(ctx.cls, found.get(_module_key(ctx.cls)))


def _import_result(cls, footprint) -> CheckResult:
    if footprint is None:
        return CheckResult("import", "SKIP", f"module {cls.__module__} has no file to import")
    if "error" in footprint:
        return CheckResult("import", "FAIL", f"importing {cls.__module__} failed: {footprint['error']}",
                           "make the module importable on its own")
    heavy = footprint["heavy"]
    if heavy:
        return CheckResult(
            "import", "FAIL", f"importing {cls.__module__} imports {', '.join(heavy)} "
            f"({footprint['seconds']:.2f} s); listing methods and building the workflow would too",
            f"move 'import {heavy[0]}' (and code that needs it) inside fit()/fuse()")
    return CheckResult("import", "PASS", f"{cls.__module__} imports nothing heavy "
                       f"({footprint['seconds']:.2f} s)")


def _module_key(cls) -> str:
    return cls.__module__


_FOOTPRINT_SCRIPT = r"""
import importlib, importlib.util, json, sys, time
import hmifbench.methods.base  # the API every method imports: not counted
heavy = set(sys.argv[1].split(","))
out = {}
for name, path in json.loads(sys.stdin.read()):
    before = set(sys.modules)
    t0 = time.perf_counter()
    try:
        spec = importlib.util.find_spec(name) if not name.startswith("hmifbench_plugin_") else None
        if spec is not None and (path is None or spec.origin == path):
            importlib.import_module(name)
        else:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
    except BaseException as err:
        out[name] = {"error": f"{type(err).__name__}: {err}"}
        continue
    new = set(sys.modules) - before
    found = sorted({m.split(".")[0] for m in new} & heavy)
    out[name] = {"heavy": found, "seconds": time.perf_counter() - t0}
    if found:
        break  # later modules would not see these imports: they get a fresh interpreter
print(json.dumps(out))
"""


def import_footprint(classes) -> dict:
    """Which heavy packages importing each class's module pulls in, each module checked in an
    interpreter where nothing heavy was imported before it.

    Returns
    -------
    dict
        module name → ``{"heavy": [...], "seconds": s}`` or ``{"error": ...}``; modules without a
        file (defined interactively) are absent.
    """
    todo = []
    for cls in classes:
        module = sys.modules.get(cls.__module__)
        path = getattr(module, "__file__", None)
        if path and [cls.__module__, path] not in todo:
            todo.append([cls.__module__, path])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    results: dict = {}
    while todo:
        proc = subprocess.run([sys.executable, "-c", _FOOTPRINT_SCRIPT, ",".join(HEAVY_MODULES)],
                              input=json.dumps(todo), capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise HmifError(f"the import check could not run: {proc.stderr.strip()[-2000:]}")
        done = json.loads(proc.stdout.strip().splitlines()[-1])
        results.update(done)
        todo = [t for t in todo if t[0] not in done]
    return results


def check_params(ctx: Context) -> CheckResult:
    """Defaults and quick params are valid; unknown names and wrong types are refused clearly."""
    cls, problems = ctx.cls, []
    try:
        cls()
    except Exception as err:
        problems.append((f"the defaults are refused: {type(err).__name__}: {err}",
                         "make every default valid for validate_params()"))
    try:
        described = {k: v["default"] for k, v in cls.describe()["params"].items()}
        cls.make_params(**json.loads(json.dumps(described)))
    except Exception as err:
        problems.append((f"the defaults do not survive the config (JSON/YAML): {err}",
                         "use defaults of the declared type that JSON can hold"))
    if ctx.params:
        try:
            cls(**ctx.params)
        except Exception as err:
            problems.append((f"the check's parameters {ctx.params} are refused: {err}",
                             "fix quick_params() or --params"))
    problems += _refusal_problems(cls, {"hmifbench_no_such_parameter": 1},
                                  "hmifbench_no_such_parameter", "an unknown parameter")
    wrong = _wrong_type_value(cls)
    if wrong is not None:
        name, value = wrong
        problems += _refusal_problems(cls, {name: value}, name, f"{name}={value!r}")
    if problems:
        return CheckResult("params", "FAIL", "; ".join(p for p, _ in problems),
                           "; ".join(dict.fromkeys(f for _, f in problems)))
    tried = "an unknown parameter" + (f" and {wrong[0]}={wrong[1]!r}" if wrong else "")
    return CheckResult("params", "PASS", f"defaults valid; {tried} refused with InputError")


def _refusal_problems(cls, params: dict, name: str, what: str) -> list[tuple[str, str]]:
    fix = ("don't override __init__/make_params without calling super(); Method.make_params "
           "raises InputError for unknown names and wrong types")
    try:
        cls(**params)
    except InputError as err:
        if name not in str(err):
            return [(f"{what} is refused but the message does not name {name!r}: {err}", fix)]
        return []
    except Exception as err:
        return [(f"{what} raised {type(err).__name__} instead of InputError: {err}", fix)]
    return [(f"{what} was accepted silently", fix)]


def _wrong_type_value(cls):
    """(parameter, value) with a value of the wrong type for a numeric or bool parameter."""
    try:
        hints = typing.get_type_hints(cls.Params)
    except Exception:
        return None
    for f in _param_fields(cls):
        if hints.get(f.name) in (int, float, bool):
            return f.name, "not-a-number" if hints[f.name] is not bool else "maybe"
    return None


def check_resources(ctx: Context) -> CheckResult:
    """Resource hints become Snakemake/SLURM resources: they must be sane."""
    from hmifbench.methods.base import Resources

    res, cls = ctx.cls.resources, ctx.cls
    if not isinstance(res, Resources):
        return CheckResult("resources", "FAIL", f"resources is a {type(res).__name__}",
                           "set resources = Resources(gpu=0, mem_mb=2000, runtime_min=10)")
    problems = []
    limits = (("mem_mb", MAX_MEM_MB, "MB"), ("runtime_min", MAX_RUNTIME_MIN, "minutes"),
              ("threads", MAX_THREADS, "threads"))
    if res.gpu not in (0, 1) or isinstance(res.gpu, bool):
        problems.append(f"gpu={res.gpu!r} (a job gets 0 or 1 GPU)")
    for attr, top, unit in limits:
        v = getattr(res, attr)
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= top:
            problems.append(f"{attr}={v!r} (an integer in 1..{top} {unit})")
    summary = (f"gpu={res.gpu}, mem_mb={res.mem_mb}, runtime_min={res.runtime_min}, "
               f"threads={res.threads}")
    if problems:
        return CheckResult("resources", "FAIL", "; ".join(problems),
                           "declare what one job on a full-size scene needs: "
                           "Resources(gpu=0|1, mem_mb=..., runtime_min=..., threads=...)")
    if res.gpu and cls.family != "deep":
        return CheckResult("resources", "WARN", f"{summary}: a {cls.family} method asks for a GPU",
                           "set family = 'deep' if it is a network, or gpu=0")
    if cls.family == "deep" and not res.gpu:
        return CheckResult("resources", "WARN", f"{summary}: a deep method that asks for no GPU "
                           "runs on the CPU in the workflow", "set gpu=1 unless it is meant for the CPU")
    return CheckResult("resources", "PASS", summary)


def _output_problems(run: Run, problem) -> list[tuple[str, str]]:
    """What is wrong with one run's output (empty when it is fine)."""
    from hmifbench.methods.base import Fused

    if not run.ok:
        if isinstance(run.error, TypeError) and "workdir" in str(run.error):
            return [(f"fit raised {run.describe_error()}", "fit() must accept workdir=None "
                     "(the workflow passes the model folder for checkpoints)")]
        return [(f"fit/fuse raised {run.describe_error()}", "see the error; reproduce it with "
                 "problem, reference = hmifbench.checks.make_problem(32, 32, 16)")]
    if not isinstance(run.result, Fused):
        return [(f"fuse() returned {type(run.result).__name__}",
                 "return hmifbench.methods.Fused(hr_hsi, ...)")]
    x = run.result.hr_hsi
    expected = problem.hr_msi.shape[:2] + (problem.bands,)
    if x.shape != expected:
        return [(f"hr_hsi has shape {x.shape}, expected {expected} (H, W from the HR-MSI, B from "
                 "the LR-HSI)", "return an (H, W, B) array: rows, columns, HSI bands")]
    if x.dtype != np.float32:
        return [(f"hr_hsi is {x.dtype}", "return float32")]
    bad = ~np.isfinite(x)
    if bad.any():
        return [(f"hr_hsi has {int(bad.sum())} NaN/inf value(s) of {x.size}",
                 "guard divisions and logs (add a small epsilon) and check the iterations converge")]
    return []


def _shape_text(run: Run, problem) -> str:
    x = run.result.hr_hsi
    return (f"{x.shape} {x.dtype} finite from LR {problem.lr_hsi.shape} + MSI "
            f"{problem.hr_msi.shape}")


def _output_fails(ctx: Context) -> bool:
    """Whether the standard known-setting run (the output check's) failed."""
    problem, _ = ctx.problem("standard", "known")
    return bool(_output_problems(ctx.run("standard", "known"), problem))


def _blocked(name: str) -> CheckResult:
    """A check that cannot be judged because the output check fails (counted once, there)."""
    return CheckResult(name, "SKIP", "not judged: the output check fails (fix that first)")


def check_output(ctx: Context) -> CheckResult:
    run = ctx.run("standard", "known")
    problem, _ = ctx.problem("standard", "known")
    problems = _output_problems(run, problem)
    if problems:
        return CheckResult("output", "FAIL", problems[0][0], problems[0][1])
    return CheckResult("output", "PASS", f"{_shape_text(run, problem)}, device={ctx.device!r}")


def check_determinism(ctx: Context) -> CheckResult:
    if _output_fails(ctx):
        return _blocked("determinism")
    a, b = ctx.run("standard", "known", 0, 0), ctx.run("standard", "known", 0, 1)
    problem, _ = ctx.problem("standard", "known")
    second = _output_problems(b, problem)
    if second:
        return CheckResult("determinism", "FAIL", f"the first run with seed=0 worked, a second one "
                           f"did not: {second[0][0]}", "don't keep state between runs (class "
                           "attributes, module globals, caches); draw randomness from the seed")
    x, y = a.result.hr_hsi, b.result.hr_hsi
    if np.array_equal(x, y):
        return CheckResult("determinism", "PASS", "seed=0 twice (fresh instances, different global "
                           "random states): identical output")
    diff = float(np.max(np.abs(x.astype(np.float64) - y)))
    return CheckResult(
        "determinism", "FAIL", f"two runs with seed=0 differ (max |difference| {diff:.3g})",
        "draw every random number from the seed argument (np.random.default_rng(seed), "
        "torch.manual_seed(seed)); no global random state, time or unordered set iteration")


def check_inputs(ctx: Context) -> CheckResult:
    run = ctx.run("standard", "known")  # judged even when the output is wrong
    if run.inputs_changed:
        return CheckResult("inputs", "FAIL", f"fuse() modified problem.{' and problem.'.join(run.inputs_changed)}"
                           " in place", "work on a copy (e.g. x = problem.lr_hsi.astype(np.float64))")
    return CheckResult("inputs", "PASS", "fuse() left lr_hsi and hr_msi unchanged")


def check_odd_sizes(ctx: Context) -> CheckResult:
    setting = "blind" if ctx.cls.blind else "known"
    run = ctx.run("odd", setting)
    problem, _ = ctx.problem("odd", setting)
    problems = _output_problems(run, problem)
    if problems:
        hint = "" if _output_fails(ctx) else ("; don't assume square images, a power-of-two "
                                              "size or a fixed band count")
        return CheckResult("odd-sizes", "FAIL", f"24×40 HR, scale 4, 7 HSI / 3 MSI bands ({setting}): "
                           f"{problems[0][0]}", problems[0][1] + hint)
    return CheckResult("odd-sizes", "PASS", f"{_shape_text(run, problem)} ({setting})")


def check_settings(ctx: Context) -> CheckResult:
    if ctx.cls.blind:
        if _output_fails(ctx):
            return _blocked("settings")
        run = ctx.run("standard", "blind")
        problem, _ = ctx.problem("standard", "blind")
        problems = _output_problems(run, problem)
        if problems:
            return CheckResult("settings", "FAIL", f"declares blind=True but fails with psf=None, "
                               f"srf=None: {problems[0][0]}", "estimate the PSF/SRF (or use a "
                               "default) when they are None, or declare blind=False and needs_*")
        return CheckResult("settings", "PASS", "blind: runs with psf=None, srf=None; known: runs "
                           "with the true PSF and SRF")
    needed = [n for n, need in (("psf", ctx.cls.needs_psf), ("srf", ctx.cls.needs_srf)) if need]
    if not needed:
        return CheckResult("settings", "SKIP", "neither blind nor needing psf/srf (see metadata)")
    problems = [_refusal(ctx, n) for n in needed]
    problems = [p for p in problems if p]
    if problems:
        return CheckResult("settings", "FAIL", "; ".join(problems),
                           "call self.check_problem(problem) first in fuse(): it raises InputError "
                           "naming what is missing")
    return CheckResult("settings", "PASS", f"not blind: a missing {' / '.join(needed)} is refused "
                       "with an InputError naming it")


def _refusal(ctx: Context, missing: str) -> str:
    """'' when fuse() refuses a problem without ``missing`` with an InputError naming it."""
    problem, _ = ctx.problem("standard", "known")
    given = _copy_problem(problem, **{missing: None})
    try:
        method = ctx.cls(**ctx.params)
        state = ctx.run("standard", "known").state if ctx.trains() else None
        method.fuse(given, state=state, seed=0, device=ctx.device)  # directly, as a user would
    except InputError as err:
        if missing not in str(err).lower():
            return f"without the {missing}: InputError does not mention {missing!r}: {err}"
        return ""
    except Exception as err:
        return (f"without the {missing}: raised {type(err).__name__} instead of InputError: "
                f"{err}{_where(err)}")
    return (f"ran without the {missing} although it declares blind=False and "
            f"needs_{missing}=True")


def check_cpu(ctx: Context) -> CheckResult:
    if ctx.device != "cpu":
        return CheckResult("cpu", "SKIP", f"checks ran on device={ctx.device!r}")
    run = ctx.run("standard", "known")
    if not run.ok:
        return CheckResult("cpu", "FAIL", f"fuse(device='cpu') raised {run.describe_error()}",
                           "run on the CPU when device='cpu' (torch.device(device))")
    if _cuda_initialized() and not ctx.cuda_before:
        return CheckResult("cpu", "FAIL", "device='cpu' was requested but CUDA was initialised",
                           "put tensors and modules on torch.device(device), never 'cuda' directly")
    return CheckResult("cpu", "PASS", "ran with device='cpu'" +
                       (" and left CUDA untouched" if _torch_cuda_available() else ""))


def _torch_cuda_available() -> bool:
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_available())
    except Exception:
        return False


def check_result(ctx: Context) -> CheckResult:
    """What the workflow writes to run.json / state.json must be storable."""
    from hmifbench.io import write_json

    run = ctx.run("standard", "known")
    problem, _ = ctx.problem("standard", "known")
    if _output_problems(run, problem):
        return _blocked("result")
    r, problems = run.result, []
    if isinstance(r.n_params, bool) or not isinstance(r.n_params, (int, np.integer)) or r.n_params < 0:
        problems.append((f"n_params={r.n_params!r}", "n_params: the number of learned parameters "
                         "(int >= 0; 0 for model-based methods)"))
    if r.iterations is not None and (not isinstance(r.iterations, (int, np.integer)) or r.iterations < 0):
        problems.append((f"iterations={r.iterations!r}", "iterations: an int >= 0 or None"))
    if r.psf is not None:
        psf = np.asarray(r.psf)
        if psf.ndim != 2 or not np.isfinite(psf).all():
            problems.append((f"psf has shape {psf.shape} or non-finite values",
                             "return the estimated PSF as a finite (k, k) kernel"))
    if r.srf is not None:
        srf = np.asarray(r.srf)
        if srf.shape != (problem.msi_bands, problem.bands) or not np.isfinite(srf).all():
            problems.append((f"srf has shape {srf.shape}, expected {(problem.msi_bands, problem.bands)}",
                             "return the estimated SRF as a (MSI bands, HSI bands) matrix"))
    with tempfile.TemporaryDirectory() as tmp:
        for what, obj in (("extras", r.extras), ("the state returned by fit()", run.state)):
            try:
                write_json(Path(tmp) / "x.json", {"x": obj})
            except Exception as err:
                problems.append((f"{what} cannot be written to JSON ({err})",
                                 "keep numbers, strings, lists, dicts and arrays in it (write "
                                 "big arrays or models to a file and store its path)"))
    if problems:
        return CheckResult("result", "FAIL", "; ".join(p for p, _ in problems),
                           "; ".join(f for _, f in problems))
    extra = [k for k in ("psf", "srf") if getattr(r, k) is not None]
    return CheckResult("result", "PASS", f"n_params={int(r.n_params)}, iterations={r.iterations}"
                       + (f", estimated {'/'.join(extra)}" if extra else "")
                       + f", {len(r.extras)} extra(s) JSON-serialisable")


def _psnr(x, ref) -> float:
    mse = float(np.mean((np.asarray(x, np.float64) - ref) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def check_accuracy(ctx: Context) -> CheckResult:
    """Information only: how far from the reference, next to bicubic upsampling."""
    from hmifbench.methods._common import upsample_cubic

    run = ctx.run("standard", "known")
    problem, ref = ctx.problem("standard", "known")
    if _output_problems(run, problem):
        return _blocked("accuracy")
    got = _psnr(run.result.hr_hsi, ref)
    floor = _psnr(upsample_cubic(problem.lr_hsi, problem.scale, problem.offset), ref)
    rows, cols, bands = ref.shape
    text = (f"PSNR {got:.1f} dB on the {rows}×{cols}×{bands} problem (bicubic upsampling "
            f"{floor:.1f} dB)")
    if got < floor - 3:
        fix = ("expected with tiny quick parameters for a deep method; otherwise check the band "
               "order, the scale/offset convention and value range") if ctx.quick else (
               "check the band order, the scale/offset convention and the value range")
        return CheckResult("accuracy", "WARN", text + ": more than 3 dB below upsampling", fix)
    return CheckResult("accuracy", "INFO", text)


def check_time(ctx: Context) -> CheckResult:
    parts = []
    for (key, setting, seed, repeat), run in ctx._runs.items():
        if run.ok:
            fit = f"fit {run.fit_s:.2f} s + " if run.fit_s else ""
            parts.append(f"{key}/{setting}#{repeat} {fit}fuse {run.fuse_s:.2f} s")
    return CheckResult("time", "INFO", "; ".join(parts) or "no successful run")


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
    from hmifbench.methods.base import Method

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
