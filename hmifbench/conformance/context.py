"""The record of one check (CheckResult), of a whole run (Report), and the run context that
builds each method instance and problem once and caches fit/fuse runs across checks."""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


from .problems import PROBLEMS, TRAIN_SEEDS, _copy_problem, make_problem


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
              if f"{os.sep}conformance{os.sep}" not in f.filename
              and not f.filename.endswith("testing.py")]
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
