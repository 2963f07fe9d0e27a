"""Checks that read a method's declarations without running it: metadata, import footprint,
parameters, resources."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import typing


from hmifbench.errors import HmifError, InputError
from hmifbench.method import NAME_PATTERN

from .context import CheckResult, Context


#: Top-level packages a method module must not import at module level.
HEAVY_MODULES = ("torch", "torchvision", "tensorflow", "jax", "jaxlib", "cupy", "keras",
                 "paddle", "mxnet", "tinygrad")

#: Plausibility limits of resource hints (a single job on one cluster node).
MAX_MEM_MB = 1_000_000          # 1 TB
MAX_RUNTIME_MIN = 7 * 24 * 60   # a week
MAX_THREADS = 256







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
import hmifbench.method  # the API every method imports: not counted
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
    from hmifbench.method import Resources

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
